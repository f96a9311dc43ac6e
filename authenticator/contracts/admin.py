"""Operator answers: a new API key, and the health of the process."""

from __future__ import annotations

from pydantic import BaseModel

from authenticator.contracts.examples import example
from authenticator.store.keys import Role


class KeyCreated(BaseModel):
    model_config = example(
        {
            "principal_id": "plt_0a1b2c3d4e5f60718293a4b5",
            "role": "platform",
            "key_id": "key_0123456789abcdef",
            "api_key": "key_0123456789abcdef.q9Jx...",
        }
    )
    principal_id: str
    role: Role
    key_id: str
    api_key: str


class Health(BaseModel):
    model_config = example({"status": "ok"})
    status: str
    checks: dict[str, str] | None = None
