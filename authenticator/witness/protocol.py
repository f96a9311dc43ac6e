"""The ``add-checkpoint`` request of C2SP tlog-witness (https://c2sp.org/tlog-witness). Pure.

The body is an old-size line ``old <size>``, zero to 63 consistency-proof lines (one base64
hash each), an empty line, then the signed checkpoint note. Each line ends in a newline. The
witness answers 200 with one or more cosignature lines, or 409 with its own latest size for the
origin (``text/x.tlog.size``) when ``old`` is not it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from authenticator.encoding import b64decode_strict
from authenticator.errors import WitnessRefusal

MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 1_100_000
"""A note is at most 1,000,000 bytes (signed-note's cap here), plus the proof lines."""
SIZE_CONTENT_TYPE = "text/x.tlog.size"
ADD_CHECKPOINT = "/add-checkpoint"
_OLD_RE = re.compile(r"old (0|[1-9][0-9]{0,19})")
_HASH_RE = re.compile(r"[A-Za-z0-9+/]{43}=")


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed ``add-checkpoint`` request."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str
    """The signed checkpoint note, exactly as sent."""


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """The request body for ``old_size``, a consistency proof from it, and the signed note."""
    if len(proof) > MAX_PROOF_LINES:
        raise ValueError(f"a consistency proof has at most {MAX_PROOF_LINES} hashes")
    lines = [f"old {old_size}\n", *(base64.b64encode(h).decode("ascii") + "\n" for h in proof), "\n"]
    return ("".join(lines) + note).encode("utf-8")


def _bad(why: str) -> WitnessRefusal:
    return WitnessRefusal(f"malformed add-checkpoint request: {why}", 400)


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse a request body; a malformed one raises :class:`WitnessRefusal` (400)."""
    if len(body) > MAX_REQUEST_BYTES:
        raise WitnessRefusal("the request is too large", 413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad("not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise _bad("no empty line before the checkpoint")
    lines = head.split("\n")
    old = _OLD_RE.fullmatch(lines[0])
    if old is None:
        raise _bad("the first line must be 'old <size>' in decimal without leading zeros")
    old_size = int(old.group(1))
    if old_size >= 2**64:
        raise _bad("the old size does not fit in 64 bits")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise _bad(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        if not _HASH_RE.fullmatch(line):
            raise _bad("a consistency proof line is not the base64 of a 32-byte hash")
        try:
            proof.append(b64decode_strict(line, "consistency proof line", canonical=True))
        except ValueError as exc:
            raise _bad(str(exc)) from exc
    if not note:
        raise _bad("no checkpoint after the empty line")
    return AddCheckpoint(old_size, tuple(proof), note)


def parse_size_answer(text: str) -> int:
    """The witness's latest size from a 409 answer's ``<size>\\n`` body (ValueError if not one)."""
    if not text.endswith("\n") or not re.fullmatch(r"0|[1-9][0-9]{0,19}", text[:-1]):
        raise ValueError("not a tree size line")
    return int(text[:-1])
