"""orderflow: a serverless sales-order backend (import, allocate, reduce stock, fulfil, complete)."""

__version__ = "0.1.0"
