"""The HTTP API: Powertools' REST resolver behind API Gateway (or the local stack's front door)."""
