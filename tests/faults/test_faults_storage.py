"""Faults of the files the server depends on: the blob store and the log's key.

* Blob directory on a read-only filesystem, or on a full one (a real tmpfs mount: the tests run
  as root, where ``chmod`` would not stop a write): uploads answer 503 problem+json, and no
  ledger entry, projection row or blob file exists for photos that were not stored.
* Log key file with loose permissions, or missing for a log that has signed checkpoints:
  ``authenticator serve`` (2 workers) refuses to start, exit code non-zero, one clear line.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from authenticator.config import Settings
from tests.api_helpers import Actors, bearer, certificate_envelope, make_actors, new_item, photo_files, real_photos
from tests.live_server import bootstrap_admin, launch, server_env

pytestmark = pytest.mark.timeout(180)


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {res.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _fill(path: Path) -> None:
    """Write zeros until the filesystem is full to its last block."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture(params=["read-only", "full"])
def broken_blobs(request: pytest.FixtureRequest, tmp_path: Path, api_tiny_weights: Path) -> Iterator[Settings]:
    """A deployment whose ``<data>/blobs`` is a read-only tmpfs, or a 256 KiB tmpfs filled up."""
    settings = Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights, database_url=None)
    blobs = settings.blob_dir
    _mount_tmpfs(blobs, "ro,size=1m" if request.param == "read-only" else "size=256k")
    try:
        if request.param == "full":
            _fill(blobs / "filler")
        yield settings
    finally:
        _umount(blobs)


def _log_state(client: TestClient) -> tuple[int, int]:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    models = client.get("/v1/models").json()
    recorded = client.get(f"/v1/models/{models[0]['sha256']}/assessments", params={"limit": 500}).json()
    return ctx.ledger.size(), len(recorded["assessments"])


def test_unwritable_blob_store_answers_503_and_records_nothing(broken_blobs: Settings) -> None:
    blobs = broken_blobs.blob_dir
    before_files = _files(blobs)
    with TestClient(create_app(broken_blobs), raise_server_exceptions=False) as client:
        actors: Actors = make_actors(client)
        item = new_item(client, actors.platform)
        if not os.access(blobs, os.W_OK):  # read-only: readiness says so (a full disk it cannot foresee)
            assert client.get("/readyz").status_code == 503
        size, recorded = _log_state(client)
        photos = photo_files(real_photos(3))
        r = client.post(f"/v1/items/{item}/assessments", files=photos, headers=bearer(actors.platform))
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "storage_unavailable" and r.headers.get("Retry-After")
        envelope = certificate_envelope(actors.lab_key, item, actors.lab_id)
        r = client.post(f"/v1/items/{item}/certificates", json=envelope, headers=bearer(actors.lab))
        assert r.status_code == 503, r.text
        assert _log_state(client) == (size, recorded)  # no entry for what was not stored
        trace = client.get(f"/v1/items/{item}/trace").json()
        assert len(trace["events"]) == 1  # item.registered only
    assert _files(blobs) == before_files  # no partial or temporary files left behind


@pytest.fixture
def deployed(tmp_path: Path, api_tiny_weights: Path) -> dict[str, str]:
    """A deployment that has served once: its log has signed checkpoints."""
    env = server_env(Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights))
    bootstrap_admin(env)
    return env


def _refused(env: dict[str, str], tmp_path: Path) -> str:
    server = launch(env, tmp_path / "refused.log", workers=2)
    try:
        rc = server.proc.wait(timeout=120)
    finally:
        server.stop()
    text = server.log_text()
    assert rc != 0, text
    assert "Traceback" not in text, text
    return text


def test_server_refuses_a_key_file_with_loose_permissions(deployed: dict[str, str], tmp_path: Path) -> None:
    key = Path(deployed["AUTHENTICATOR_DATA_DIR"]) / "log.key"
    key.chmod(0o644)
    text = _refused(deployed, tmp_path)
    assert f"chmod 600 {key}" in text and "mode 0644" in text


def test_server_refuses_to_sign_an_existing_log_with_a_new_key(deployed: dict[str, str], tmp_path: Path) -> None:
    key = Path(deployed["AUTHENTICATOR_DATA_DIR"]) / "log.key"
    key.unlink()
    text = _refused(deployed, tmp_path)
    assert f"log key {key} is missing" in text
    assert not key.exists()  # no stray key was made


def test_server_refuses_another_key(deployed: dict[str, str], tmp_path: Path, api_tiny_weights: Path) -> None:
    other = server_env(Settings(data_dir=tmp_path / "other", weights_dir=api_tiny_weights))
    bootstrap_admin(other)
    key = Path(deployed["AUTHENTICATOR_DATA_DIR"]) / "log.key"
    os.replace(Path(other["AUTHENTICATOR_DATA_DIR"]) / "log.key", key)
    text = _refused(deployed, tmp_path)
    assert "does not match the key that signed this log" in text
