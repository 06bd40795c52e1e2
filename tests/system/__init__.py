"""System tests: real processes, races, faults, load and the deployment layout."""
