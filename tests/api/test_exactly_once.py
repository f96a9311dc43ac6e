"""One write, one entry: identical concurrent requests append once, on SQLite and PostgreSQL,
in one process, with ``--workers 2`` and with two servers on one database; a log that an
older version wrote with duplicates neither bricks the start nor misleads a page."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from api.app import create_app
from api.routers.common import answered
from authenticator.config import Settings
from authenticator.contracts.common import Appended
from authenticator.contracts.items import ItemCreated
from authenticator.errors import NotFound
from authenticator.ledger.log import NewEntry, Receipt
from authenticator.services.commands import Command, execute
from authenticator.services.context import b64
from authenticator.store.idempotency import IdempotencyKey
from tests.api_helpers import Actors, bearer, certificate_envelope, new_item
from tests.exactly_once_attacks import Keys, check_after_restart, run_attacks
from tests.live_server import bootstrap_admin, run_cli, server_env, start_server
from tests.pg_scratch import scratch_schema

N = 32


def test_bursts_in_one_process(client: TestClient, actors: Actors) -> None:
    keys = Keys(actors.platform, actors.lab, actors.lab_id, actors.lab_key)
    run_attacks(lambda _i, path, **kw: client.post(path, **kw), client.get, keys, N)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    from authenticator.ledger.verify import verify_ledger

    report = verify_ledger(ctx.ledger, workers=1)
    assert report.ok and not report.warnings, report


def _keys_over_http(base: str, admin: str) -> Keys:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    r = httpx.post(f"{base}/v1/keys", json={"role": "platform", "name": "Acme"}, headers=bearer(admin), timeout=30)
    assert r.status_code == 201, r.text
    platform = r.json()["api_key"]
    lab_key = Ed25519PrivateKey.generate()
    raw = base64.b64encode(lab_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    r = httpx.post(
        f"{base}/v1/labs",
        json={"name": "Geneva Lab", "accreditation": "ISO/IEC 17025", "public_key": raw},
        headers=bearer(admin),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return Keys(platform, r.json()["api_key"], r.json()["id"], lab_key)


def _live_attack(settings: Settings, tmp_path: Path, *, servers: int, workers: int) -> None:
    env = server_env(settings)
    admin = bootstrap_admin(env)
    running = [start_server(env, tmp_path / f"server{k}.log", workers=workers) for k in range(servers)]
    try:
        bases = [s.base for s in running]
        keys = _keys_over_http(bases[0], admin)
        with httpx.Client(timeout=120) as http:

            def post(i: int, path: str, **kw: Any) -> httpx.Response:
                return http.post(bases[i % len(bases)] + path, **kw)

            def get(path: str) -> httpx.Response:
                return http.get(bases[-1] + path)

            item = run_attacks(post, get, keys, N)
        for server in running:
            server.stop()
            assert "Traceback" not in server.log_text(), server.log_text()[-3000:]
        running = [start_server(env, tmp_path / "restart.log", workers=workers)]
        with httpx.Client(timeout=60) as http:
            check_after_restart(lambda path: http.get(running[0].base + path), item)
    finally:
        for server in running:
            server.stop()
    res = run_cli(["ledger", "verify"], env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "warning" not in res.stderr
    res = run_cli(["projections", "rebuild"], env)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_bursts_on_sqlite_with_two_workers(api_tiny_weights: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights, database_url=None)
    _live_attack(settings, tmp_path, servers=1, workers=2)


@pytest.mark.slow
@pytest.mark.postgres
def test_bursts_on_two_postgres_servers_with_two_workers_each(api_tiny_weights: Path, tmp_path: Path) -> None:
    with scratch_schema("t_once") as url:
        settings = Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights, database_url=url)
        _live_attack(settings, tmp_path, servers=2, workers=2)


# --- A log an older version wrote: duplicates of what may happen once ---------------------------


def _forge_duplicates(client: TestClient, actors: Actors) -> dict[str, Any]:
    """What the old code appended under a burst: the first of each command through the API, then
    copies of the same events appended straight to the log (no precondition), the projections
    left behind as the old code left them when its catch-up failed."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    item = new_item(client, actors.platform)
    env = certificate_envelope(actors.lab_key, item, actors.lab_id)
    cert = client.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab)).json()
    listing = client.post(
        "/v1/listings",
        json={"item_id": item, "title": "Birkin", "price": "100", "currency": "EUR"},
        headers=bearer(actors.platform),
    ).json()
    attach = json.loads(base64.b64decode(cert["receipt"]["entry"]))
    publish = json.loads(base64.b64decode(listing["receipt"]["entry"]))
    lab_id, listing_id = actors.lab_id, listing["id"]
    applied = ctx.projector.applied_size()
    start = ctx.ledger.size()
    ctx.ledger.append_batch(
        [
            NewEntry("certificate.attached", item, attach["body"]),
            NewEntry("listing.published", item, publish["body"]),
            NewEntry("certificate.revoked", item, {"certificate_id": cert["id"], "lab_id": lab_id, "reason": "first"}),
            NewEntry("certificate.revoked", item, {"certificate_id": cert["id"], "lab_id": lab_id, "reason": "again"}),
            NewEntry("listing.closed", item, {"listing_id": listing_id, "reason": "sold"}),
            NewEntry("listing.closed", item, {"listing_id": listing_id, "reason": "withdrawn"}),
        ]
    )
    assert ctx.projector.applied_size() == applied  # the tables have not seen the copies
    return {"item": item, "cert": cert["id"], "listing": listing_id, "start": start}


def test_duplicates_from_an_older_version(api_tiny_weights: Path, tmp_path: Path) -> None:
    """Start-up and ``projections rebuild`` take the log; the first of each event counts;
    ``ledger verify`` passes with one warning per repeat, naming its index."""
    _duplicates_scenario(Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights, database_url=None))


@pytest.mark.postgres
def test_duplicates_from_an_older_version_on_postgres(api_tiny_weights: Path, tmp_path: Path) -> None:
    with scratch_schema("t_dups") as url:
        _duplicates_scenario(Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights, database_url=url))


def _duplicates_scenario(settings: Settings) -> None:
    from tests.api_helpers import make_actors

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        actors = make_actors(client)
        forged = _forge_duplicates(client, actors)
    # The old code's tables, stuck before the copies; start-up must not be bricked by them.
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        item, cert, listing = forged["item"], forged["cert"], forged["listing"]
        got = client.get(f"/v1/certificates/{cert}").json()
        assert got["status"] == "revoked" and got["revocation_reason"] == "first"
        assert got["attached_index"] < forged["start"]  # the first attachment counts
        assert client.get(f"/v1/listings/{listing}").json()["closed_reason"] == "sold"
        assert client.get(f"/v1/items/{item}").json()["badge"]["level"] == "warning"
        page = client.get(f"/t/{item}").text
        words = json.loads(page.split('id="event-words">', 1)[1].split("</script>", 1)[0])
        ignored = sorted(w["index"] for w in words.values() if w["title"].endswith("(repeated, ignored)"))
        s = forged["start"]
        assert ignored == [s, s + 1, s + 3, s + 5], ignored
        # Writes work again and append exactly once.
        r = client.post(f"/v1/items/{item}/custody", json={"event": "sold"}, headers=bearer(actors.platform))
        assert r.status_code == 201, r.text
    env = server_env(settings)
    res = run_cli(["projections", "rebuild"], env)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_cli(["ledger", "verify"], env)
    assert res.returncode == 0, res.stdout + res.stderr
    warnings = json.loads(res.stdout)["warnings"]
    s = forged["start"]
    assert [w["index"] for w in warnings] == [s, s + 1, s + 3, s + 5], warnings
    assert "first at index" in warnings[0]["reason"]
    assert f"warning: index {s}:" in res.stderr


def test_start_rebuilds_tables_projected_under_old_rules(api_tiny_weights: Path, tmp_path: Path) -> None:
    """Tables an older version projected (no rules version) are rebuilt from the log at start."""
    settings = Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights, database_url=None)
    with TestClient(create_app(settings)) as client:
        from tests.api_helpers import make_actors

        actors = make_actors(client)
        item = new_item(client, actors.platform)
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        with ctx.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE proj_state SET rules_version = NULL")
            conn.exec_driver_sql("DELETE FROM proj_items")  # what the old rules would have missed
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/v1/items/{item}").status_code == 200


def test_after_the_commit_a_failed_read_still_answers_201_with_the_receipt(client: TestClient) -> None:
    """An appended command whose answer cannot be read back is still a success: 201, its id and
    a receipt of its entry (``Appended``), sent past the route's response model; a retry with the
    same key gets that answer again and appends nothing."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    body = {"category": "bag", "brand": "Hermès", "model": "Birkin 30", "serial_commitment": None, "platform": "plt_a"}
    command = Command([NewEntry("item.registered", "itm_unreadable", body)], "itm_unreadable")
    key = IdempotencyKey("plt_a", "retry-1", "register|unreadable")

    def unreadable(_receipts: list[Receipt]) -> ItemCreated:
        raise NotFound("the answer's reads failed")

    def no_replay(_resource_id: str) -> ItemCreated:
        raise AssertionError("the first answer was stored: a retry gets it")

    size = ctx.ledger.size()
    status, answer = execute(ctx, command, unreadable, replay=no_replay, answer_type=ItemCreated, key=key)
    assert status == 201 and isinstance(answer, Appended) and answer.id == "itm_unreadable"
    stored = ctx.ledger.entry(answer.receipt.index)
    assert answer.receipt.index == size and ctx.ledger.size() == size + 1
    assert (answer.receipt.leaf_hash, answer.receipt.entry) == (b64(stored.leaf_hash), b64(stored.data))

    assert execute(ctx, command, unreadable, replay=no_replay, answer_type=ItemCreated, key=key) == (201, answer)
    assert ctx.ledger.size() == size + 1

    sent = answered(Response(), (status, answer))
    assert isinstance(sent, JSONResponse) and sent.status_code == 201
    assert json.loads(bytes(sent.body)) == {"id": "itm_unreadable", "receipt": answer.receipt.model_dump(mode="json")}
