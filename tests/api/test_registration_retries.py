"""Retry-safe registrations: ``POST /v1/keys`` and ``POST /v1/labs`` honour ``Idempotency-Key``
(the same request again gets the first answer, its API key included, and creates nothing), a
lab's public key is registered once (409 naming the lab), and both hold under bursts of
identical requests, on SQLite and PostgreSQL. The first answer's API key is kept only sealed
(AES-GCM under a key derived from the caller's own API key), never in plaintext."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update

from api.app import create_app
from authenticator.config import Settings
from authenticator.db import create_ledger_engine, write_tx
from authenticator.errors import IntegrityError as DbIntegrityError
from authenticator.store.keys import create_key, issue_key
from authenticator.store.migrate import MIGRATIONS_DIR
from authenticator.store.tables import api_keys, idempotency, labs, principals
from tests.api_helpers import Actors, bearer
from tests.exactly_once_attacks import burst, statuses
from tests.live_server import bootstrap_admin, server_env, start_server
from tests.pg_scratch import scratch_schema

N = 8


def _engine(client: TestClient) -> Engine:
    return client.app.state.ctx.engine  # type: ignore[attr-defined,no-any-return]


def _raw_key() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _lab_body(public_key: str, name: str | None = None) -> dict[str, str]:
    return {"name": name or f"Lab {uuid.uuid4().hex[:8]}", "accreditation": "ISO/IEC 17025", "public_key": public_key}


def _principals_named(client: TestClient, name: str) -> list[str]:
    with _engine(client).connect() as conn:
        return [r.id for r in conn.execute(select(principals.c.id).where(principals.c.name == name)).all()]


def _keys_of(client: TestClient, principal_id: str) -> list[str]:
    with _engine(client).connect() as conn:
        rows = conn.execute(select(api_keys.c.id).where(api_keys.c.principal_id == principal_id)).all()
    return [r.id for r in rows]


def _labs_with(client: TestClient, public_key: str) -> list[str]:
    with _engine(client).connect() as conn:
        return [r.id for r in conn.execute(select(labs.c.id).where(labs.c.public_key == public_key)).all()]


def _works(client: TestClient, api_key: str) -> bool:
    """The key authenticates: an empty body gets 422 from a platform's key, 403 from a lab's, never 401."""
    r = client.post("/v1/items", json={}, headers=bearer(api_key))
    return r.status_code != 401


def _idem(admin: str, key: str) -> dict[str, str]:
    return {**bearer(admin), "Idempotency-Key": key}


# --- POST /v1/keys ----------------------------------------------------------------------------


def test_key_retry_with_one_idempotency_key_gets_the_first_answer(client: TestClient, actors: Actors) -> None:
    name = f"Acme {uuid.uuid4().hex[:8]}"
    headers = _idem(actors.admin, f"plt-{name}")
    first = client.post("/v1/keys", json={"role": "platform", "name": name}, headers=headers)
    again = client.post("/v1/keys", json={"role": "platform", "name": name}, headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()  # the same principal, key id and API key
    pid = first.json()["principal_id"]
    assert _principals_named(client, name) == [pid]
    assert _keys_of(client, pid) == [first.json()["key_id"]]
    assert _works(client, first.json()["api_key"])


def test_key_idempotency_key_with_another_body_is_409(client: TestClient, actors: Actors) -> None:
    name = f"Acme {uuid.uuid4().hex[:8]}"
    headers = _idem(actors.admin, f"plt-{name}")
    assert client.post("/v1/keys", json={"role": "platform", "name": name}, headers=headers).status_code == 201
    for body in ({"role": "platform", "name": name + " 2"}, {"role": "admin", "name": name}):
        r = client.post("/v1/keys", json=body, headers=headers)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "idempotency_conflict"
    assert _principals_named(client, name + " 2") == []
    assert len(_principals_named(client, name)) == 1
    # The same key on the other registration endpoint is another request too.
    r = client.post("/v1/labs", json=_lab_body(_raw_key()[1]), headers=headers)
    assert r.status_code == 409 and r.json()["code"] == "idempotency_conflict", r.text


def test_keys_without_idempotency_key_are_distinct(client: TestClient, actors: Actors) -> None:
    """Two platforms may share a name: without a key, two requests are two principals."""
    name = f"Acme {uuid.uuid4().hex[:8]}"
    for _ in range(2):
        r = client.post("/v1/keys", json={"role": "platform", "name": name}, headers=bearer(actors.admin))
        assert r.status_code == 201, r.text
    assert len(_principals_named(client, name)) == 2


def test_idempotency_keys_are_per_caller(client: TestClient, actors: Actors) -> None:
    other_admin = create_key(_engine(client), "admin", "ops 2").api_key
    name = f"Acme {uuid.uuid4().hex[:8]}"
    answers = [
        client.post("/v1/keys", json={"role": "platform", "name": name}, headers=_idem(admin, "shared-key"))
        for admin in (actors.admin, other_admin)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["principal_id"] != answers[1].json()["principal_id"]


def test_the_first_answers_api_key_is_not_stored_in_plaintext(client: TestClient, actors: Actors) -> None:
    name = f"Acme {uuid.uuid4().hex[:8]}"
    r = client.post("/v1/keys", json={"role": "admin", "name": name}, headers=_idem(actors.admin, f"adm-{name}"))
    assert r.status_code == 201, r.text
    secret = r.json()["api_key"].split(".", 1)[1]
    lab = client.post("/v1/labs", json=_lab_body(_raw_key()[1]), headers=_idem(actors.admin, f"lab-{name}"))
    assert lab.status_code == 201, lab.text
    lab_secret = lab.json()["api_key"].split(".", 1)[1]
    with _engine(client).connect() as conn:
        rows = conn.execute(select(idempotency)).all()
    stored = repr(rows)
    assert secret not in stored and lab_secret not in stored
    mine = [row for row in rows if row.key in (f"adm-{name}", f"lab-{name}")]
    assert len(mine) == 2 and all(row.response.startswith("sealed:") for row in mine)


def test_a_replay_with_another_key_of_the_same_admin_is_409_naming_what_was_created(
    client: TestClient, actors: Actors
) -> None:
    """The sealed answer opens only with the API key that asked (here: a rotated admin key)."""
    engine = _engine(client)
    admin = create_key(engine, "admin", "ops rotating")
    rotated = issue_key(engine, admin.principal_id).api_key
    name = f"Acme {uuid.uuid4().hex[:8]}"
    body = {"role": "platform", "name": name}
    first = client.post("/v1/keys", json=body, headers=_idem(admin.api_key, "k-1"))
    assert first.status_code == 201, first.text
    r = client.post("/v1/keys", json=body, headers=_idem(rotated, "k-1"))
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "idempotency_conflict"
    assert problem["principal_id"] == first.json()["principal_id"]
    assert problem["key_id"] == first.json()["key_id"]
    assert first.json()["principal_id"] in problem["detail"]
    assert "api_key" not in r.text
    assert _principals_named(client, name) == [first.json()["principal_id"]]
    # The key that asked still gets the first answer.
    assert client.post("/v1/keys", json=body, headers=_idem(admin.api_key, "k-1")).json() == first.json()


def test_a_replay_after_the_window_is_409_and_the_sealed_answer_is_erased(client: TestClient, actors: Actors) -> None:
    engine = _engine(client)
    name = f"Acme {uuid.uuid4().hex[:8]}"
    body = {"role": "platform", "name": name}
    first = client.post("/v1/keys", json=body, headers=_idem(actors.admin, f"old-{name}"))
    assert first.status_code == 201, first.text
    lab_body = _lab_body(_raw_key()[1])
    lab = client.post("/v1/labs", json=lab_body, headers=_idem(actors.admin, f"old-lab-{name}"))
    assert lab.status_code == 201, lab.text
    long_ago = "2020-01-01T00:00:00.000000Z"
    with write_tx(engine) as conn:
        conn.execute(
            update(idempotency)
            .where(idempotency.c.key.in_([f"old-{name}", f"old-lab-{name}"]))
            .values(created_at=long_ago)
        )
    r = client.post("/v1/keys", json=body, headers=_idem(actors.admin, f"old-{name}"))
    assert r.status_code == 409 and r.json()["principal_id"] == first.json()["principal_id"], r.text
    # The next registration erases sealed answers past the window.
    more = client.post("/v1/keys", json={"role": "platform", "name": name + " 2"}, headers=bearer(actors.admin))
    assert more.status_code == 201, more.text
    with engine.connect() as conn:
        rows = conn.execute(select(idempotency.c.response).where(idempotency.c.created_at == long_ago)).all()
    assert len(rows) == 2 and all(row.response is None for row in rows), rows
    r = client.post("/v1/labs", json=lab_body, headers=_idem(actors.admin, f"old-lab-{name}"))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "idempotency_conflict"
    assert r.json()["lab_id"] == lab.json()["id"] and r.json()["key_id"] == lab.json()["key_id"]
    assert len(_principals_named(client, name)) == 1


def test_key_burst_with_one_idempotency_key_is_one_principal(client: TestClient, actors: Actors) -> None:
    name = f"Acme {uuid.uuid4().hex[:8]}"
    body = {"role": "platform", "name": name}
    answers = burst(N, lambda _i: client.post("/v1/keys", json=body, headers=_idem(actors.admin, f"burst-{name}")))
    assert statuses(answers) == Counter({201: N}), [a.text[:200] for a in answers]
    assert len({a.text for a in answers}) == 1
    pid = answers[0].json()["principal_id"]
    assert _principals_named(client, name) == [pid]
    assert len(_keys_of(client, pid)) == 1


# --- POST /v1/labs ----------------------------------------------------------------------------


def test_a_public_key_registered_twice_is_409_naming_the_lab(client: TestClient, actors: Actors) -> None:
    private, raw = _raw_key()
    first = client.post("/v1/labs", json=_lab_body(raw, "Geneva Twin"), headers=bearer(actors.admin))
    assert first.status_code == 201, first.text
    lab_id = first.json()["id"]
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    for body in (_lab_body(raw, "Geneva Twin"), _lab_body(pem, "Another name, same key")):
        r = client.post("/v1/labs", json=body, headers=bearer(actors.admin))
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["code"] == "conflict" and problem["lab_id"] == lab_id and lab_id in problem["detail"]
        assert "api_key" not in r.text
    # Another Idempotency-Key is another request: the same 409.
    r = client.post("/v1/labs", json=_lab_body(raw, "Geneva Twin"), headers=_idem(actors.admin, f"l-{raw}"))
    assert r.status_code == 409 and r.json()["lab_id"] == lab_id, r.text
    assert _labs_with(client, raw) == [lab_id]
    assert _principals_named(client, "Geneva Twin") == [lab_id]
    assert _keys_of(client, lab_id) == [first.json()["key_id"]]
    assert [lab["id"] for lab in client.get("/v1/labs").json()["labs"] if lab["public_key"] == raw] == [lab_id]


def test_lab_retry_with_one_idempotency_key_gets_the_first_answer(client: TestClient, actors: Actors) -> None:
    _private, raw = _raw_key()
    body = _lab_body(raw)
    headers = _idem(actors.admin, f"lab-{raw}")
    first = client.post("/v1/labs", json=body, headers=headers)
    again = client.post("/v1/labs", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert _labs_with(client, raw) == [first.json()["id"]]
    assert _keys_of(client, first.json()["id"]) == [first.json()["key_id"]]
    assert _works(client, first.json()["api_key"])
    other = client.post("/v1/labs", json={**body, "accreditation": "none"}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict", other.text


def test_lab_burst_is_one_lab(client: TestClient, actors: Actors) -> None:
    _private, raw = _raw_key()
    body = _lab_body(raw)
    answers = burst(N, lambda _i: client.post("/v1/labs", json=body, headers=bearer(actors.admin)))
    counts = statuses(answers)
    assert counts == Counter({201: 1, 409: N - 1}), (counts, [a.text[:200] for a in answers])
    lab_id = next(a for a in answers if a.status_code == 201).json()["id"]
    assert {a.json()["lab_id"] for a in answers if a.status_code == 409} == {lab_id}
    assert _labs_with(client, raw) == [lab_id]
    assert _principals_named(client, body["name"]) == [lab_id]
    assert len(_keys_of(client, lab_id)) == 1


def test_lab_burst_with_one_idempotency_key_is_one_lab_answered_alike(client: TestClient, actors: Actors) -> None:
    _private, raw = _raw_key()
    body = _lab_body(raw)
    answers = burst(N, lambda _i: client.post("/v1/labs", json=body, headers=_idem(actors.admin, f"b-{raw}")))
    assert statuses(answers) == Counter({201: N}), [a.text[:200] for a in answers]
    assert len({a.text for a in answers}) == 1
    assert _labs_with(client, raw) == [answers[0].json()["id"]]
    assert len(_keys_of(client, answers[0].json()["id"])) == 1


def test_the_database_refuses_a_second_lab_with_one_public_key(client: TestClient, actors: Actors) -> None:
    """The backstop under the serialised check: a unique index, for any writer that skips it."""
    _private, raw = _raw_key()
    first = client.post("/v1/labs", json=_lab_body(raw), headers=bearer(actors.admin))
    assert first.status_code == 201, first.text
    row = {"name": "Twin", "accreditation": "x", "public_key": raw, "keyid": "k", "created_at": "2026-01-01"}
    with pytest.raises(DbIntegrityError), write_tx(_engine(client)) as conn:
        conn.execute(insert(labs).values(id="lab_" + uuid.uuid4().hex[:24], **row))
    assert _labs_with(client, raw) == [first.json()["id"]]


@pytest.mark.slow
@pytest.mark.postgres
def test_bursts_on_two_postgres_servers_with_two_workers_each(api_tiny_weights: Path, tmp_path: Path) -> None:
    """Twins spread over two servers (four processes) on one database: one principal, one lab."""
    with scratch_schema("t_regs") as url:
        env = server_env(Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights, database_url=url))
        admin = bootstrap_admin(env)
        running = [start_server(env, tmp_path / f"server{k}.log", workers=2) for k in range(2)]
        try:
            bases = [s.base for s in running]
            _private, raw = _raw_key()
            lab = _lab_body(raw)
            key = {"role": "platform", "name": "Live Acme"}
            with httpx.Client(timeout=120) as http:

                def post(i: int, path: str, body: dict[str, str], idem: str | None) -> httpx.Response:
                    headers = bearer(admin) if idem is None else _idem(admin, idem)
                    return http.post(bases[i % 2] + path, json=body, headers=headers)

                keys = burst(N, lambda i: post(i, "/v1/keys", key, "live-key"))
                assert statuses(keys) == Counter({201: N}) and len({a.text for a in keys}) == 1
                twins = burst(N, lambda i: post(i, "/v1/labs", lab, None))
                assert statuses(twins) == Counter({201: 1, 409: N - 1}), [a.text[:200] for a in twins]
                lab_id = next(a for a in twins if a.status_code == 201).json()["id"]
                assert {a.json()["lab_id"] for a in twins if a.status_code == 409} == {lab_id}
                retried = burst(N, lambda i: post(i, "/v1/labs", _lab_body(_raw_key()[1], "Live"), "live-lab"))
                # One Idempotency-Key, bodies that differ (each a new public key): one lab, the rest 409.
                assert statuses(retried) == Counter({201: 1, 409: N - 1}), [a.text[:200] for a in retried]
                listed = http.get(bases[0] + "/v1/labs").json()["labs"]
            assert [x["id"] for x in listed if x["public_key"] == raw] == [lab_id]
            assert len([x for x in listed if x["name"] == "Live"]) == 1
            for server in running:
                server.stop()
                assert "Traceback" not in server.log_text(), server.log_text()[-3000:]
        finally:
            for server in running:
                server.stop()


# --- A database an older version filled with duplicate labs -----------------------------------


def _legacy_database(url: str) -> tuple[str, str, str]:
    """The API's tables at the revision before this change, with one public key registered
    twice (as the old code did on a retry). Returns the key and the two lab ids."""
    engine = create_ledger_engine(url)
    try:
        with write_tx(engine) as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0005_model_lifecycle")
        _private, raw = _raw_key()
        ids = ("lab_" + "1" * 24, "lab_" + "2" * 24)
        with write_tx(engine) as conn:
            for n, lab_id in enumerate(ids):
                created = f"2026-01-0{n + 1}T00:00:00.000000Z"
                conn.execute(insert(principals).values(id=lab_id, role="lab", name="Old Lab", created_at=created))
                conn.execute(
                    insert(labs).values(
                        id=lab_id, name="Old Lab", accreditation="x", public_key=raw, keyid="k", created_at=created
                    )
                )
    finally:
        engine.dispose()
    return raw, ids[0], ids[1]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_duplicate_labs_of_an_older_version_do_not_stop_the_upgrade(
    backend: str, api_tiny_weights: Path, tmp_path: Path
) -> None:
    def scenario(url: str | None) -> None:
        data = tmp_path / "data"
        data.mkdir()
        raw, first, second = _legacy_database(url or f"sqlite:///{data / 'authenticator.db'}")
        settings = Settings(data_dir=data, weights_dir=api_tiny_weights, database_url=url)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            both = [lab["id"] for lab in client.get("/v1/labs").json()["labs"]]
            assert both == [first, second]  # both stay: their certificates name them
            admin = create_key(_engine(client), "admin", "ops").api_key
            r = client.post("/v1/labs", json=_lab_body(raw), headers=bearer(admin))
            assert r.status_code == 409 and r.json()["lab_id"] == first, r.text
            assert _labs_with(client, raw) == [first, second]

    if backend == "sqlite":
        scenario(None)
    else:
        with scratch_schema("t_labdup") as url:
            scenario(url)
