"""Content-addressed blob store: ``<root>/<aa>/<bb>/<sha256>``, written atomically.

Photos, certificate envelopes and listing titles live here, never in the log (the log holds
their hashes). A blob is written to a temporary file, fsynced and renamed into place, so a
reader never sees half a file and a crash leaves at most a stray temporary file.

Blobs are photos of other people's goods (and homes), so the store is owner-only: files 0600,
folders 0700 (modes set at creation, so the umask cannot widen them), and a store left
readable by an older version has its root folder closed to others when it is opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from authenticator.errors import NotFound, StorageUnavailable

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
FILE_MODE = 0o600
DIR_MODE = 0o700


def _private_dir(path: Path) -> None:
    """Create ``path`` (one level) owner-only, or take group/other access off an existing one."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=DIR_MODE)
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, DIR_MODE)
    except OSError:  # not ours to change (a read-only mount): readers still work
        pass


class BlobStore:
    """Immutable blobs addressed by the lower-case hex SHA-256 of their bytes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if self.root.is_dir():
            _private_dir(self.root)

    def _make_parents(self, path: Path) -> None:
        """``<root>/<aa>/<bb>``, each folder 0700 (``mkdir -p`` would give the parents 0755)."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, path.parent.parent, path.parent):
            _private_dir(folder)

    def _path(self, sha256: str) -> Path:
        if not _SHA256_RE.fullmatch(sha256):
            raise NotFound("no such blob")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its SHA-256."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._path(sha256)
        if path.is_file():
            return sha256
        tmp = path.with_name(f".{sha256}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            if not path.parent.is_dir():
                self._make_parents(path)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageUnavailable(f"cannot store a blob: {exc.strerror}") from exc
        return sha256

    def get(self, sha256: str) -> bytes:
        """The blob's bytes; :class:`NotFound` when absent (or deleted on request)."""
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound("no such blob") from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read a blob: {exc.strerror}") from exc

    def delete(self, sha256: str) -> bool:
        """Remove the blob's file (a photo taken back); True when there was one to remove.

        Blobs are content-addressed, so one file may serve several assessments, items or
        listings: the caller decides that nothing still needs it (``services/erasure.py`` asks
        the tables, under the log's writer lock) before calling this.
        """
        path = self._path(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete a blob: {exc.strerror}") from exc
        with contextlib.suppress(OSError):  # make the removal durable, like a write
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return True

    def exists(self, sha256: str) -> bool:
        try:
            return self._path(sha256).is_file()
        except NotFound:
            return False

    def check_writable(self) -> None:
        """Raise :class:`StorageUnavailable` when blobs cannot be written (for ``/readyz``)."""
        try:
            self.root.parent.mkdir(parents=True, exist_ok=True)
            _private_dir(self.root)
        except OSError as exc:
            raise StorageUnavailable(f"blob store {self.root} is not writable: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailable(f"blob store {self.root} is not writable")
