"""`make load`: a bounded mixed workload against several `numbra serve` processes on PostgreSQL.

`python -m load.run --help` for the knobs; `load.run.run` for tests.
"""
