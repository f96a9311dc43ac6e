"""Fault: the server (uvicorn, 2 workers) is killed with SIGKILL while clients write.

Clients run assessments and certificate uploads on a real server; the whole process group gets
SIGKILL mid-stream. After a restart every request that had received a 2xx is in the log at its
receipt's index with the same leaf hash, the log verifies (``authenticator ledger verify``),
and the server takes writes again. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from authenticator.config import Settings
from tests.api_helpers import bearer, certificate_envelope, photo_files, real_photos, register_lab
from tests.live_server import LiveServer, bootstrap_admin, run_cli, server_env, start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

KILL_AFTER = 16  # acknowledged writes before the kill (the clients keep going meanwhile)


@dataclass
class Acked:
    """Every 2xx a client received: (what, leaf index, base64 leaf hash)."""

    receipts: list[tuple[str, int, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, answer: dict[str, Any]) -> None:
        with self.lock:
            self.receipts.append((what, int(answer["receipt"]["index"]), str(answer["receipt"]["leaf_hash"])))

    def count(self) -> int:
        with self.lock:
            return len(self.receipts)


@dataclass
class Deployment:
    platform: str
    lab: str
    lab_id: str
    lab_key: Any
    items: list[str]


def deploy(base: str, admin: str, n_items: int) -> Deployment:
    with httpx.Client(base_url=base, timeout=60) as http:
        r = http.post("/v1/keys", json={"role": "platform", "name": "Acme"}, headers=bearer(admin))
        assert r.status_code == 201, r.text
        platform = r.json()["api_key"]
        lab, lab_id, lab_key = register_lab(http, admin, "Geneva Lab")  # type: ignore[arg-type]
        items = []
        for _ in range(n_items):
            r = http.post(
                "/v1/items", json={"category": "sneaker", "brand": "Nike", "model": "AJ1"}, headers=bearer(platform)
            )
            assert r.status_code == 201, r.text
            items.append(r.json()["id"])
    return Deployment(platform, lab, lab_id, lab_key, items)


def _client(base: str, dep: Deployment, worker: int, acked: Acked, stop: threading.Event) -> None:
    """Alternate assessments and certificate uploads until the server dies (or ``stop``)."""
    n = 0
    with httpx.Client(base_url=base, timeout=60) as http:
        while not stop.is_set():
            item = dep.items[(worker + n) % len(dep.items)]
            try:
                if n % 2 == 0:
                    # Another photo each time: one item's photo set is assessed once (409 after).
                    files = photo_files(real_photos(1, offset=(worker * 40 + n // 2) % 160))
                    r = http.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(dep.platform))
                    what = "assessment"
                else:
                    env = certificate_envelope(dep.lab_key, item, dep.lab_id, method=f"inspection {worker}-{n}")
                    r = http.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(dep.lab))
                    what = "certificate"
            except httpx.HTTPError:
                return  # the server is gone: whatever was in flight got no 2xx
            n += 1
            if r.is_success:
                acked.add(what, r.json())
            elif r.status_code != 503:
                with acked.lock:
                    acked.failures.append(f"{what}: {r.status_code} {r.text[:200]}")


def _entries_by_index(base: str, indices: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    with httpx.Client(base_url=base, timeout=60) as http:
        lo, hi = min(indices), max(indices) + 1
        for start in range(lo, hi, 1000):
            r = http.get("/v1/log/entries", params={"start": start, "end": min(start + 1000, hi)})
            assert r.status_code == 200, r.text
            out.update({int(e["index"]): str(e["leaf_hash"]) for e in r.json()["entries"]})
    return out


def test_sigkill_mid_writes_loses_no_acknowledged_entry(api_settings: Settings, tmp_path: Path) -> None:
    env = server_env(api_settings)
    admin = bootstrap_admin(env)
    server: LiveServer = start_server(env, tmp_path / "server1.log", workers=2, log_level="warning")
    try:
        dep = deploy(server.base, admin, 6)
        acked, stop = Acked(), threading.Event()
        threads = [
            threading.Thread(target=_client, args=(server.base, dep, w, acked, stop), daemon=True) for w in range(4)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while acked.count() < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill9()  # every client has a request in flight or about to be sent
    finally:
        stop.set()
        server.stop()
    for t in threads:
        t.join(timeout=90)
        assert not t.is_alive()
    assert acked.count() >= KILL_AFTER, acked.failures
    assert not acked.failures, acked.failures
    assert {what for what, _, _ in acked.receipts} == {"assessment", "certificate"}

    server = start_server(env, tmp_path / "server2.log", workers=2, log_level="warning")
    try:
        stored = _entries_by_index(server.base, [i for _, i, _ in acked.receipts])
        for what, index, leaf in acked.receipts:
            assert stored.get(index) == leaf, f"acknowledged {what} at index {index} is not in the log as answered"
        assert len({i for _, i, _ in acked.receipts}) == len(acked.receipts)
        with httpx.Client(base_url=server.base, timeout=60) as http:  # still writable after the crash
            r = http.post(
                f"/v1/items/{dep.items[0]}/assessments",
                files=photo_files(real_photos(1, offset=160)),  # a photo no client sent
                headers=bearer(dep.platform),
            )
            assert r.status_code == 201, r.text
    finally:
        server.stop()
    res = run_cli(["ledger", "verify"], env)
    assert res.returncode == 0, res.stdout + res.stderr
