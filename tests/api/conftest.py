"""The HTTP API through the real app: journeys, roles, exactly-once commands, erasure,
preview, strict inputs, OpenAPI."""
