"""Lambda entry points, one folder per function. Each handler parses its event, calls the domain, returns."""
