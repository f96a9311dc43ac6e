"""The log and its witnesses: background submission, cosigned checkpoints, and the buyer's policy.

A real witness process witnesses the log of a real app (lifespan included, SQLite). Appends
through the API make the log submit its new checkpoint in the background; the checkpoint it
serves (``/v1/log/checkpoint``, traces) then carries the witness's cosignature, still opens with
the log key alone, and ``authenticator trace verify --witness KEY --min-witnesses 1`` passes
with it and fails without it. A witness that does not answer never slows an append; one that is
ahead of the log's record (409) is caught up from its own size; a client holding a checkpoint of
a forked log is told so.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import delete
from typer.testing import CliRunner

from api.app import create_app
from authenticator.cli import app as cli_app
from authenticator.config import Settings
from authenticator.db import write_tx
from authenticator.ledger.checkpoint import Checkpoint, CheckpointSigner, verify_checkpoint
from authenticator.ledger.cosignature import CosignatureSigner, verify_cosignatures
from authenticator.services.context import ServiceContext
from authenticator.services.traces import served_checkpoint
from authenticator.services.witnessing import CosignatureStore, WitnessSubmitter, configured_witnesses
from authenticator.store.tables import log_cosignatures
from authenticator.trace_verify import verify_trace
from authenticator.witness.store import WitnessStore
from tests.api_helpers import make_actors, new_item
from tests.ledger_samples import sample_entry
from tests.witness_support import WitnessServer, running_witness

ORIGIN = "authenticator.local/log"


@dataclass
class Site:
    client: TestClient
    settings: Settings
    witness: WitnessServer
    log_key: str
    platform: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, api_tiny_weights: Path) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("data")
    log_key = CheckpointSigner.load_or_create(data / "log.key", ORIGIN).verifier_key
    with running_witness(tmp_path_factory.mktemp("witness") / "w", "witness.test/api", [log_key]) as witness:
        settings = Settings(
            data_dir=data, weights_dir=api_tiny_weights, database_url=None, witnesses=f"{witness.base} {witness.vkey}"
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            actors = make_actors(client)
            yield Site(client, settings, witness, log_key, actors.platform)


def _size(note: str) -> int:
    return int(note.split("\n")[1])


def _cosigned_checkpoint(site: Site, timeout: float = 30) -> str:
    """``GET /v1/log/checkpoint`` once it carries the witness's cosignature of its own size."""
    deadline = time.monotonic() + timeout
    while True:
        note = site.client.get("/v1/log/checkpoint").text
        if verify_cosignatures(note, [site.witness.verifier]):
            return note
        if time.monotonic() > deadline:
            pytest.fail(f"no cosignature on {note!r}:\n{site.witness.log_path.read_text()[-2000:]}")
        time.sleep(0.05)


def _cosigned_trace(site: Site, item: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        trace: dict[str, Any] = site.client.get(f"/v1/items/{item}/trace").json()
        if verify_cosignatures(trace["checkpoint"], [site.witness.verifier]):
            return trace
        if time.monotonic() > deadline:
            pytest.fail("the trace's checkpoint was never cosigned")
        time.sleep(0.05)


def test_the_log_submits_each_checkpoint_and_serves_the_cosignatures(site: Site) -> None:
    item = new_item(site.client, site.platform)
    note = _cosigned_checkpoint(site)
    # Still a checkpoint of the log, opened with the log key alone: the witness line is ignored.
    cp = verify_checkpoint(note, site.log_key, ORIGIN)
    assert cp.size == site.client.app.state.ctx.ledger.size()  # type: ignore[attr-defined]
    sigs = note.partition("\n\n")[2]
    assert len(sigs.splitlines()) == 2  # the log's line, then the witness's
    [cosig] = verify_cosignatures(note, [site.witness.verifier])
    assert abs(cosig.timestamp - time.time()) < 120
    # The witness recorded that very checkpoint as the latest of this log.
    latest = WitnessStore(site.witness.data_dir / "witness.db").latest(ORIGIN)
    assert latest is not None and latest.size >= cp.size
    # The key endpoint names the witness; traces carry the cosigned checkpoint too.
    key = site.client.get("/v1/log/key").json()
    assert key["witnesses"] == [site.witness.vkey]
    trace = _cosigned_trace(site, item)
    assert verify_cosignatures(trace["checkpoint"], [site.witness.verifier])
    head = site.client.get(f"/v1/items/{item}/head").json()
    assert verify_checkpoint(head["checkpoint"], site.log_key).size >= cp.size


def test_every_new_checkpoint_is_witnessed_as_the_log_grows(site: Site) -> None:
    sizes = []
    for _ in range(3):
        new_item(site.client, site.platform)
        note = _cosigned_checkpoint(site)
        sizes.append(_size(note))
        assert _size(note) == site.client.app.state.ctx.ledger.size()  # type: ignore[attr-defined]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


def _save(tmp_path: Path, trace: dict[str, Any], name: str = "trace.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(trace))
    return str(path)


def test_trace_verify_with_a_witness_policy(site: Site, tmp_path: Path) -> None:
    item = new_item(site.client, site.platform)
    trace = _cosigned_trace(site, item)
    runner = CliRunner()
    base = ["trace", "verify", _save(tmp_path, trace), "--key", site.log_key]
    ok = runner.invoke(cli_app, [*base, "--witness", site.witness.vkey, "--min-witnesses", "1"])
    assert ok.exit_code == 0, ok.output
    assert "witnessed by witness.test/api at " in ok.output
    as_json = json.loads(runner.invoke(cli_app, [*base, "--witness", site.witness.vkey, "--json"]).output)
    assert as_json["ok"] and [w["verifier_key"] for w in as_json["witnessed_by"]] == [site.witness.vkey]

    # The same trace without its cosignatures: the policy fails (exit 1), everything else holds.
    text, _, sigs = trace["checkpoint"].partition("\n\n")
    bare = {**trace, "checkpoint": f"{text}\n\n{sigs.splitlines()[0]}\n"}
    res = runner.invoke(
        cli_app,
        ["trace", "verify", _save(tmp_path, bare, "bare.json"), "--key", site.log_key, "--witness", site.witness.vkey],
    )
    assert res.exit_code == 1, res.output
    assert "0 of the required 1 witnesses cosigned this checkpoint" in res.output
    assert (
        runner.invoke(cli_app, ["trace", "verify", _save(tmp_path, bare, "b2.json"), "--key", site.log_key]).exit_code
        == 0
    )

    # A witness key the buyer trusts that did not cosign: not enough.
    stranger = CosignatureSigner("witness.test/other", Ed25519PrivateKey.generate()).verifier_key
    res = runner.invoke(cli_app, [*base, "--witness", stranger])
    assert res.exit_code == 1 and "0 of the required 1" in res.output
    res = runner.invoke(cli_app, [*base, "--witness", stranger, "--witness", site.witness.vkey, "--min-witnesses", "2"])
    assert res.exit_code == 1 and "1 of the required 2" in res.output
    assert runner.invoke(cli_app, [*base, "--witness", stranger, "--witness", site.witness.vkey]).exit_code == 0

    # A forged cosignature line under the witness's name and key id: refused, not ignored.
    line = sigs.splitlines()[1]
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[-1] ^= 1
    forged = {
        **trace,
        "checkpoint": f"{text}\n\n{sigs.splitlines()[0]}\n{line.split(' ')[0]} {line.split(' ')[1]} "
        f"{base64.b64encode(bytes(raw)).decode()}\n",
    }
    report = verify_trace(forged, site.log_key, witnesses=[site.witness.vkey], min_witnesses=1)
    assert not report.ok and any("does not verify" in f for f in report.failures)

    # Usage errors: a policy without keys, a log key given as a witness key (exit 2, one line).
    res = runner.invoke(cli_app, [*base, "--min-witnesses", "1"])
    assert res.exit_code == 2 and "needs at least 1 --witness" in res.output
    res = runner.invoke(cli_app, [*base, "--witness", site.log_key])
    assert res.exit_code == 2 and "type 0x04" in res.output


def test_a_client_holding_a_checkpoint_of_a_fork_is_told(site: Site, tmp_path: Path) -> None:
    """The operator's key signs a second tree of the current size and shows it to one buyer.
    That buyer's later check fails; and the witness refuses to cosign the forked checkpoint."""
    item = new_item(site.client, site.platform)
    trace = _cosigned_trace(site, item)
    real = verify_checkpoint(trace["checkpoint"], site.log_key)
    signer = CheckpointSigner.load_or_create(site.settings.data_dir / "log.key", ORIGIN)
    forked = signer.sign(Checkpoint(ORIGIN, real.size, bytes(32), real.extensions))
    kept = tmp_path / "kept.note"
    kept.write_text(forked)
    res = CliRunner().invoke(
        cli_app, ["trace", "verify", _save(tmp_path, trace), "--key", site.log_key, "--checkpoint", str(kept)]
    )
    assert res.exit_code == 1 and "the log forked" in res.output
    # The witness will not cosign the fork: its size is already cosigned with another root.
    refused = site.witness.add(real.size, [], forked)
    assert refused.status_code == 409 and "forked" in refused.text


def test_a_witness_ahead_of_the_logs_record_is_caught_up_from_its_size(site: Site) -> None:
    """The log forgot what the witness cosigned (its table emptied): it sends old 0, the witness
    answers 409 with its size, and the next request, from that size, is cosigned."""
    ctx = site.client.app.state.ctx  # type: ignore[attr-defined]
    new_item(site.client, site.platform)
    _cosigned_checkpoint(site)
    with write_tx(ctx.engine) as conn:
        conn.execute(delete(log_cosignatures))
    store = CosignatureStore(ctx.engine)
    fresh = WitnessSubmitter(ctx.ledger, store, configured_witnesses(site.settings))
    seen: list[str] = []

    def record(request: httpx.Request) -> None:
        seen.append(request.content.decode().split("\n", 1)[0])

    with httpx.Client(timeout=30, event_hooks={"request": [record]}) as http:
        size = fresh.submit(fresh.witnesses[0], http)
    assert size == ctx.ledger.size()
    assert seen == ["old 0", f"old {size}"]
    assert store.lines(size, [site.witness.vkey])


def test_appends_never_wait_for_a_witness(tmp_path: Path, api_tiny_weights: Path) -> None:
    """A witness that accepts connections and never answers: appends return at once, the
    checkpoint is served without cosignatures, and closing does not hang."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    try:
        witness_key = CosignatureSigner("witness.test/silent", Ed25519PrivateKey.generate()).verifier_key
        settings = Settings(
            data_dir=tmp_path / "data",
            weights_dir=api_tiny_weights,
            witnesses=f"http://127.0.0.1:{port} {witness_key}",
            witness_timeout_seconds=3,
        )
        ctx = ServiceContext.open(settings, load_model=False)
        try:
            ctx.start_witnessing()
            for i in range(5):
                started = time.monotonic()
                ctx.append([sample_entry(4 * i, f"item-{i}")])
                assert time.monotonic() - started < 1.0
            assert served_checkpoint(ctx) == ctx.ledger.latest_checkpoint()
        finally:
            started = time.monotonic()
            ctx.close()
            assert time.monotonic() - started < 10
    finally:
        silent.close()


def test_without_witnesses_nothing_changes(client: TestClient) -> None:
    """No AUTHENTICATOR_WITNESSES: no thread, the checkpoint exactly as the ledger signed it."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    assert ctx.witnessing is None
    assert client.get("/v1/log/checkpoint").text == ctx.ledger.latest_checkpoint()
    assert client.get("/v1/log/key").json()["witnesses"] == []


def test_cosignatures_are_kept_and_served_on_both_stores(api_settings: Settings) -> None:
    """The cosignature table on SQLite and PostgreSQL: kept per witness and size (a newer one of
    the same size replaces the older), served after the log's line in the configured order."""
    w1 = CosignatureSigner("witness.test/one", Ed25519PrivateKey.generate())
    w2 = CosignatureSigner("witness.test/two", Ed25519PrivateKey.generate())
    settings = api_settings.model_copy(
        update={"witnesses": f"http://127.0.0.1:1 {w2.verifier_key}, http://127.0.0.1:2 {w1.verifier_key}"}
    )
    ctx = ServiceContext.open(settings, load_model=False)
    try:
        note = ctx.ledger.latest_checkpoint()
        size = _size(note)
        text = note.split("\n\n")[0] + "\n"
        store = CosignatureStore(ctx.engine)
        assert store.latest_size(w1.verifier_key) is None
        for signer, when in ((w1, 100), (w2, 200), (w1, 300)):
            [cosig] = verify_cosignatures(note + signer.cosign(text, when), [signer.verifier])
            store.add(size, cosig)
        assert store.latest_size(w1.verifier_key) == size
        served = served_checkpoint(ctx, note)
        found = verify_cosignatures(served, [w1.verifier, w2.verifier])
        assert [(c.name, c.timestamp) for c in found] == [("witness.test/one", 300), ("witness.test/two", 200)]
        assert served.split("\n\n")[1].splitlines()[1].startswith("— witness.test/two ")  # the configured order
        assert verify_checkpoint(served, ctx.ledger.verifier_key).size == size
    finally:
        ctx.close()
