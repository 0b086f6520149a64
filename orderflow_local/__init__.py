"""The embedded local stack: moto on loopback running the real ASL with our handlers, and the API."""
