"""`make load`: a bounded mixed workload against several `numbra serve` processes on PostgreSQL.

`python -m tests.load.run --help` for the knobs; `tests.load.run.run` for tests.
"""
