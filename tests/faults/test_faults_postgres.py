"""Faults on PostgreSQL: two servers appending to one log, and a connection killed mid-request.

* Two ``authenticator serve`` processes on one database (one schema) take writes at once:
  one log, contiguous indices, every acknowledged receipt at its index, every checkpoint any
  client saw consistent with the final one (no fork), ``ledger verify`` passes.
* ``pg_terminate_backend`` on the server's connections while a write waits inside its
  transaction: that request answers 503 problem+json, nothing of it is stored, the next
  request succeeds.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from authenticator.config import Settings
from authenticator.ledger.checkpoint import verify_checkpoint
from authenticator.ledger.merkle import verify_consistency
from tests.api_helpers import bearer
from tests.live_server import bootstrap_admin, launch, run_cli, server_env, start_server, wait_ready
from tests.pg_scratch import PG_DSN, create_scratch_schema, drop_scratch_schema

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

ITEM = {"category": "sneaker", "brand": "Nike", "model": "AJ1"}


@pytest.fixture
def pg_settings(tmp_path: Path, api_tiny_weights: Path) -> Iterator[tuple[Settings, str, str]]:
    """A fresh schema; the URL names an application_name so the test can find its connections."""
    schema, url = create_scratch_schema("t_api")
    app_name = f"faults_{uuid.uuid4().hex[:10]}"
    try:
        settings = Settings(
            data_dir=tmp_path / "data", weights_dir=api_tiny_weights, database_url=f"{url}&application_name={app_name}"
        )
        yield settings, schema, app_name
    finally:
        drop_scratch_schema(schema)


def _platform_key(base: str, admin: str) -> str:
    r = httpx.post(f"{base}/v1/keys", json={"role": "platform", "name": "Acme"}, headers=bearer(admin), timeout=60)
    assert r.status_code == 201, r.text
    return str(r.json()["api_key"])


def _writer(base: str, key: str, n: int, out: list[dict[str, Any]], errors: list[str]) -> None:
    """Register items and record custody transfers on them: ``n`` appends, receipts kept."""
    with httpx.Client(base_url=base, timeout=120) as http:
        item = ""
        for k in range(n):
            if k % 3 == 0:
                r = http.post("/v1/items", json=ITEM, headers=bearer(key))
                if r.status_code == 201:
                    item = r.json()["id"]
            else:  # alternate events: the same event twice in a row is a doubled request (409)
                event = "consigned" if k % 3 == 1 else "sold"
                r = http.post(f"/v1/items/{item}/custody", json={"event": event}, headers=bearer(key))
            if r.status_code == 201:
                out.append(r.json()["receipt"])
            else:
                errors.append(f"{r.status_code} {r.text[:200]}")


def test_two_servers_on_one_database_keep_one_log(pg_settings: tuple[Settings, str, str], tmp_path: Path) -> None:
    settings, _, _ = pg_settings
    env = server_env(settings)
    admin = bootstrap_admin(env)
    servers = [launch(env, tmp_path / f"server{i}.log", log_level="warning") for i in range(2)]
    try:
        for s in servers:
            wait_ready(s)
        keys = [_platform_key(s.base, admin) for s in servers]
        receipts: list[dict[str, Any]] = []
        errors: list[str] = []
        threads = [
            threading.Thread(target=_writer, args=(servers[i % 2].base, keys[i % 2], 45, receipts, errors))
            for i in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        assert not errors, errors
        assert len(receipts) == 6 * 45
        with httpx.Client(base_url=servers[0].base, timeout=60) as http:
            vkey = http.get("/v1/log/key").json()["verifier_key"]
            assert (
                servers[1].base != servers[0].base
                and httpx.get(f"{servers[1].base}/v1/log/key").json()["verifier_key"] == vkey
            )
            final = verify_checkpoint(http.get("/v1/log/checkpoint").text, vkey)
            entries = http.get("/v1/log/entries", params={"start": 0, "end": final.size}).json()["entries"]
            assert [e["index"] for e in entries] == list(range(final.size))  # no gap
            by_index = {e["index"]: e["leaf_hash"] for e in entries}
            indices = [r["index"] for r in receipts]
            assert len(set(indices)) == len(indices)  # nobody got the same index twice
            for r in receipts:
                assert by_index[r["index"]] == r["leaf_hash"]
                seen = verify_checkpoint(r["checkpoint"], vkey)  # no fork: each seen tree is a prefix
                assert seen.size == r["tree_size"] <= final.size
                if 0 < seen.size < final.size:
                    proof = http.get("/v1/log/proof/consistency", params={"from": seen.size, "to": final.size})
                    hashes = [base64.b64decode(h) for h in proof.json()["hashes"]]
                    verify_consistency(seen.size, final.size, hashes, seen.root_hash, final.root_hash)
    finally:
        for s in servers:
            s.stop()
    res = run_cli(["ledger", "verify"], env)
    assert res.returncode == 0, res.stdout + res.stderr


def _counts(schema: str) -> tuple[int, int, int, int]:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(f"SELECT count(*) FROM {schema}.{t}").fetchone()[0])  # type: ignore[index]
            for t in ("log_entries", "log_nodes", "log_checkpoints", "proj_items")
        )


def test_connection_killed_mid_request_fails_cleanly(pg_settings: tuple[Settings, str, str], tmp_path: Path) -> None:
    settings, schema, app_name = pg_settings
    env = server_env(settings)
    admin = bootstrap_admin(env)
    server = start_server(env, tmp_path / "server.log", log_level="warning")
    try:
        key = _platform_key(server.base, admin)
        before = _counts(schema)
        answer: list[httpx.Response] = []
        with psycopg.connect(PG_DSN) as blocker:
            # The write gets its entries and nodes in, then waits for the checkpoint table.
            blocker.execute(f"LOCK TABLE {schema}.log_checkpoints IN ACCESS EXCLUSIVE MODE")
            t = threading.Thread(
                target=lambda: answer.append(
                    httpx.post(f"{server.base}/v1/items", json=ITEM, headers=bearer(key), timeout=120)
                )
            )
            t.start()
            waiting = _wait_for_lock_waiter(app_name)
            with psycopg.connect(PG_DSN, autocommit=True) as admin_conn:
                killed = admin_conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (app_name,)
                ).fetchall()
            assert killed and waiting
            t.join(timeout=120)
            blocker.rollback()
        [r] = answer
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "storage_unavailable" and "Retry-After" in r.headers
        assert _counts(schema) == before  # nothing half-written
        r = httpx.post(f"{server.base}/v1/items", json=ITEM, headers=bearer(key), timeout=60)
        assert r.status_code == 201, r.text
        after = _counts(schema)
        assert after[0] == before[0] + 1 and after[3] == before[3] + 1
    finally:
        server.stop()
    res = run_cli(["ledger", "verify"], env)
    assert res.returncode == 0, res.stdout + res.stderr


def _wait_for_lock_waiter(app_name: str) -> int:
    """The pid of the server's connection once it waits on a lock (inside its transaction)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
                (app_name,),
            ).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.05)
    raise AssertionError("the server's write never reached the locked table")
