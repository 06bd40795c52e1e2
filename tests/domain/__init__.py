"""Domain tests: the rules through the domain layer, without HTTP."""
