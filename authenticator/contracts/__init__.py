"""Typed hand-offs between layers: what services return and the API answers, one definition each.

Services build these pydantic models; ``api/`` declares them as response models and returns them
unchanged; pages read their attributes. Request bodies stay in ``api/schemas.py`` (only the HTTP
layer parses them). Modules are split by concept, like the services that fill them.
"""
