"""Keep API keys out of the server's logs, even when a client puts one where it does not belong.

Keys travel in the ``Authorization`` header, which nothing logs; but a client that sends its
key in a URL (``?api_key=…``) would have it written to the access log in clear. Every log record
of the process is rewritten when it is created (a log record factory, so records of any logger
and any handler are covered, uvicorn's access and error loggers included): anything shaped like
an API key (``key_<16 hex>.<43 url-safe base64>``) becomes its key id and ``.<redacted>``.

- **Percent-encoding.** A URL may carry any character of a key %-encoded (``key%5F…``,
  ``%6Bey_…``, ``…%2E…``, even twice: ``%255F``). Matching runs on a percent-decoded copy of
  each string (decoded up to three times) and the matched span of the original is replaced.
- **The record keeps its shape.** The message and each argument are redacted in place, so
  ``record.args`` stays the tuple (or mapping) its formatter expects: uvicorn's access formatter
  unpacks five arguments, and a record whose ``args`` became ``None`` made it fail with a
  ``--- Logging error ---`` traceback that printed the record, key and all.
- **Exceptions.** A record with ``exc_info`` gets its traceback text formatted and redacted up
  front (``exc_text``, which formatters print instead of formatting it again); ``stack_info``
  likewise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

# On the percent-decoded text: ``key_`` (any case), the 16-hex key id, a dot, the secret.
_DECODED_KEY = re.compile(r"((?i:key)_[0-9A-Fa-f]{16})\.[A-Za-z0-9_-]+")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_DECODE_ROUNDS = 3
REDACTED = "<redacted>"
# Kept for callers that matched the literal form; redact() is what the filter uses.
KEY_PATTERN = re.compile(r"(key_[0-9a-f]{16})(?:\.|%2[eE])[A-Za-z0-9_-]{20,}")
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "authenticator", "authenticator.api")
_PLAIN = (int, float, bool, type(None))


def _percent_decode(text: str) -> tuple[str, list[int]]:
    """``text`` with each ``%XX`` decoded (as one Latin-1 character) and, for each character of
    the result, where it starts in ``text`` (plus one last entry: ``len(text)``)."""
    out: list[str] = []
    starts: list[int] = []
    pos = 0
    for m in _PERCENT.finditer(text):
        for i in range(pos, m.start()):
            out.append(text[i])
            starts.append(i)
        out.append(chr(int(m.group(1), 16)))
        starts.append(m.start())
        pos = m.end()
    for i in range(pos, len(text)):
        out.append(text[i])
        starts.append(i)
    starts.append(len(text))
    return "".join(out), starts


def redact(text: str) -> str:
    """``text`` with every API key (literal or %-encoded, in part or whole) cut to its key id
    (written ``key_<hex>.<redacted>``, lower case, whatever the encoding that was sent)."""
    if "%" not in text:
        if not _DECODED_KEY.search(text):
            return text
        return _DECODED_KEY.sub(lambda m: f"{m.group(1).lower()}.{REDACTED}", text)
    decoded, where = text, list(range(len(text) + 1))
    for _ in range(_DECODE_ROUNDS):
        if "%" not in decoded:
            break
        again, starts = _percent_decode(decoded)
        if again == decoded:
            break
        decoded, where = again, [where[s] for s in starts]
    pieces: list[str] = []
    pos = 0
    for m in _DECODED_KEY.finditer(decoded):
        start, end = where[m.start()], where[m.end()]
        pieces += [text[pos:start], f"{m.group(1).lower()}.{REDACTED}"]
        pos = end
    if not pieces:
        return text
    pieces.append(text[pos:])
    return "".join(pieces)


class _Redacted:
    """Stands in for an object whose ``str``/``repr`` showed a key: formats as the redacted text."""

    __slots__ = ("_repr", "_str")

    def __init__(self, as_str: str, as_repr: str) -> None:
        self._str, self._repr = as_str, as_repr

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._repr


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1")
        redacted = redact(text)
        return value if redacted == text else redacted.encode("latin-1")
    try:
        as_str, as_repr = str(value), repr(value)
    except Exception:  # an object that cannot print itself cannot leak through logging either
        return value
    red_str, red_repr = redact(as_str), redact(as_repr)
    if red_str == as_str and red_repr == as_repr:
        return value
    return _Redacted(red_str, red_repr)


def redact_record(record: logging.LogRecord) -> None:
    """Redact ``record`` in place: message, each argument (same tuple/mapping shape), traceback."""
    if getattr(record, "_keys_redacted", False):
        return
    try:
        record.msg = _redact_value(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redact_value(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _redact_value(v) for k, v in args.items()}
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            redacted = redact(text)
            if redacted != text:
                record.exc_text = redacted
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
    except Exception:  # never let a record through unredacted; never break the logging call
        record.msg, record.args = "log record withheld: it could not be checked for API keys", ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
    record._keys_redacted = True


class RedactKeys(logging.Filter):
    """The same redaction as a filter (for handlers or loggers set up outside this process's factory)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def _redacting_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    factory._redacts_keys = True  # type: ignore[attr-defined]
    return factory


def install() -> None:
    """Redact every record this process creates, and filter the server's loggers (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "_redacts_keys", False):
        logging.setLogRecordFactory(_redacting_factory(current))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())
