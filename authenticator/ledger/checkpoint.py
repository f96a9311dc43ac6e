"""C2SP tlog-checkpoints (https://c2sp.org/tlog-checkpoint) signed as C2SP signed notes.

A checkpoint body is ``<origin>\\n<tree size in decimal>\\n<base64 root hash>\\n`` followed by
optional non-empty extension lines. Parsing is strict so that one tree state has exactly one
encoding: no leading zeros, canonical base64, a 32-byte hash. The log's key name is its
origin, and the key lives in a PEM file readable by its owner only.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from authenticator.encoding import b64decode_strict
from authenticator.errors import CheckpointError, ConfigurationError
from authenticator.ledger.note import NoteSigner, NoteVerifier, is_valid_key_name, open_note

HASH_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,19}")
_B64_32_RE = re.compile(r"[A-Za-z0-9+/]{43}=")
_CONTROL_RE = re.compile(r"[\x00-\x1f]")


def _check_line(value: str, what: str) -> None:
    if not value:
        raise CheckpointError(f"checkpoint {what} must not be empty")
    if _CONTROL_RE.search(value):
        raise CheckpointError(f"checkpoint {what} must not contain control characters or newlines")


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of a log's size and root hash (the note text, without signatures)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str):
            raise CheckpointError("checkpoint origin must be a string")
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError("checkpoint size must be an integer in [0, 2**64)")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise CheckpointError("checkpoint extensions must be a tuple of lines")
        for line in self.extensions:
            if not isinstance(line, str):
                raise CheckpointError("checkpoint extension lines must be strings")
            _check_line(line, "extension line")

    def body(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii"), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Parse a checkpoint body (the text of an opened note); raise on any deviation."""
        if not isinstance(body, str):
            raise CheckpointError("a checkpoint body is text")
        if not body.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint body needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        if not _SIZE_RE.fullmatch(size_text):
            raise CheckpointError("checkpoint size must be ASCII decimal without leading zeros")
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise CheckpointError("checkpoint size does not fit in 64 bits")
        if not _B64_32_RE.fullmatch(root_text):
            raise CheckpointError(f"checkpoint root hash must be the base64 of {HASH_SIZE} bytes")
        root = b64decode_strict(root_text, "checkpoint root hash", canonical=True, error=CheckpointError)
        return cls(origin, size, root, tuple(extensions))


def _check_key_file_mode(path: Path, mode: int, what: str = "log key") -> None:
    if not stat.S_ISREG(mode):
        raise ConfigurationError(f"{what} {path} is not a regular file", path=str(path))
    if mode & 0o077:
        raise ConfigurationError(
            f"{what} {path} is readable or writable by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"fix it with: chmod 600 {path}",
            path=str(path),
        )


def _load_private_key(path: Path, what: str = "log key") -> Ed25519PrivateKey:
    try:
        fd = os.open(path, os.O_RDONLY)  # symlinks allowed: secret mounts (Kubernetes) use them
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}", path=str(path)) from exc
    try:
        _check_key_file_mode(path, os.fstat(fd).st_mode, what)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(64 * 1024)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}", path=str(path)) from exc
    finally:
        os.close(fd)
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{what} {path} is not an unencrypted PEM private key (corrupt?)", path=str(path)
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{what} {path} is not an Ed25519 key", path=str(path))
    return key


def _create_private_key(path: Path, what: str = "log key") -> Ed25519PrivateKey | None:
    """Write a new key; ``None`` when another process created the file first.

    The PEM goes to a temporary file opened ``O_EXCL`` with mode 0600 and is then hard-linked
    into place, so no reader ever sees a half-written key and a concurrent creator loses cleanly.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return None
    except OSError as exc:
        raise ConfigurationError(f"cannot create {what} {path}: {exc.strerror}", path=str(path)) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return key


def load_or_create_ed25519_key(path: Path, what: str = "log key") -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file at ``path`` (owner-only), made on first use."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        created = _create_private_key(path, what)
        if created is not None:
            return created
    return _load_private_key(path, what)


class CheckpointSigner:
    """The log's checkpoint key: a :class:`NoteSigner` whose key name is the log's origin."""

    def __init__(self, origin: str, private_key: Ed25519PrivateKey) -> None:
        if not is_valid_key_name(origin):
            raise ConfigurationError(
                f"log origin {origin!r} cannot be a key name: it must be non-empty, without spaces or '+'"
            )
        self.origin = origin
        self._signer = NoteSigner(origin, private_key)
        self.verifier: NoteVerifier = self._signer.verifier
        self.verifier_key: str = self._signer.verifier_key

    @classmethod
    def load_or_create(cls, path: Path, origin: str) -> CheckpointSigner:
        """Load the Ed25519 key at ``path``, generating it (mode 0600) on first use."""
        path = Path(path)
        if not is_valid_key_name(origin):
            raise ConfigurationError(
                f"log origin {origin!r} cannot be a key name: it must be non-empty, without spaces or '+'"
            )
        return cls(origin, load_or_create_ed25519_key(path))

    def sign(self, cp: Checkpoint) -> str:
        """The signed note of ``cp``; refuses a checkpoint of another origin."""
        if cp.origin != self.origin:
            raise CheckpointError(f"checkpoint origin {cp.origin!r} is not this log's origin {self.origin!r}")
        return self._signer.sign(cp.body())


@lru_cache(maxsize=64)
def _verifier(verifier_key: str) -> NoteVerifier:
    """Parsed verifier keys, kept: ``ledger verify`` checks thousands of notes with one key."""
    return NoteVerifier.from_verifier_key(verifier_key)


def verify_checkpoint(note: str | bytes, verifier_key: str, origin: str | None = None) -> Checkpoint:
    """Open a signed checkpoint with one verifier key; check the origin when one is given."""
    if not isinstance(verifier_key, str):
        raise CheckpointError("a verifier key is a string")
    text, _ = open_note(note, [_verifier(verifier_key)])
    cp = Checkpoint.parse(text)
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} is not the expected {origin!r}")
    return cp
