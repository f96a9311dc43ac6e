"""Keep API keys out of the server's logs, even when a client puts one where it does not belong.

Keys travel in the ``Authorization`` header, which nothing logs; but a client that sends its
key in a URL (``?api_key=…``) would have it written to the access log in clear. This filter
rewrites every record of the server's loggers, replacing anything shaped like an API key
(``key_<16 hex>.<43 url-safe base64>``) with its key id and ``.<redacted>``.
"""

from __future__ import annotations

import logging
import re

KEY_PATTERN = re.compile(r"(key_[0-9a-f]{16})(?:\.|%2[eE])[A-Za-z0-9_-]{20,}")
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "authenticator", "authenticator.api")


class RedactKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = KEY_PATTERN.sub(r"\1.<redacted>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install() -> None:
    """Add the filter to the server's loggers once per process (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())
