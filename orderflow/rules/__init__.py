"""Business rules in plain Python: no AWS, no I/O."""
