"""Job tests: the sweep, the notices and the actors, run for real."""
