"""Example values shown at ``/docs`` (OpenAPI ``examples``), shared by every contract module."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

B64 = str

CHECKPOINT = (
    "authenticator.local/log\n42\nR2dlWm1yN0l0aGlzaXNhcm9vdGhhc2hleGFtcGxlMDA=\n\n"
    "— authenticator.local/log Az3grl2zzm2tC8ho4LZ3rWh2mS2Wqx5Ws3Q3rTqW8C5Ya8pC6XxLqK7O3fzKf4yQfdbE1Y7b3wXb7sQ==\n"
)
HASH = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})
