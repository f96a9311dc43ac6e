"""`authenticator ledger ...` as a user runs it: its JSON verifies with the library's verifiers."""

from __future__ import annotations

import base64
import itertools
import json
import stat
from pathlib import Path

from authenticator.config import Settings
from authenticator.ledger.checkpoint import verify_checkpoint
from authenticator.ledger.log import Ledger
from authenticator.ledger.merkle import verify_consistency, verify_inclusion
from tests.ledger_samples import ORIGIN, run_cli, sample_entries


def _b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_cli_commands_print_verifiable_json(ledger: Ledger, db_url: str, key_path: Path, tmp_path: Path) -> None:
    ledger.append_batch(sample_entries(13, items=3))
    ledger.append_batch(sample_entries(8, items=3, start=13))
    key = run_cli(["ledger", "key", "--db", db_url], key_path, tmp_path)
    assert key.returncode == 0, key.stderr
    vkey = key.stdout.strip()
    assert vkey == ledger.verifier_key and vkey.startswith(ORIGIN + "+")

    cp = run_cli(["ledger", "checkpoint", "--db", db_url], key_path, tmp_path)
    assert cp.returncode == 0, cp.stderr
    latest = verify_checkpoint(cp.stdout, vkey, ORIGIN)
    assert latest.size == 21

    proof = run_cli(["ledger", "prove", "--index", "5", "--size", "13", "--db", db_url], key_path, tmp_path)
    assert proof.returncode == 0, proof.stderr
    out = json.loads(proof.stdout)
    signed = verify_checkpoint(out["checkpoint"], vkey, ORIGIN)
    assert (out["tree_size"], signed.size) == (13, 13)
    verify_inclusion(5, 13, base64.b64decode(out["leaf_hash"]), _b64(out["inclusion_proof"]), signed.root_hash)

    now = json.loads(run_cli(["ledger", "prove", "--index", "20", "--db", db_url], key_path, tmp_path).stdout)
    verify_inclusion(20, 21, base64.b64decode(now["leaf_hash"]), _b64(now["inclusion_proof"]), latest.root_hash)

    cons = run_cli(["ledger", "consistency", "--from", "13", "--to", "21", "--db", db_url], key_path, tmp_path)
    assert cons.returncode == 0, cons.stderr
    c = json.loads(cons.stdout)
    assert base64.b64decode(c["root1"]) == signed.root_hash
    verify_consistency(13, 21, _b64(c["consistency_proof"]), signed.root_hash, latest.root_hash)

    hist = run_cli(["ledger", "history", "item-1", "--db", db_url], key_path, tmp_path)
    assert hist.returncode == 0, hist.stderr
    entries = json.loads(hist.stdout)["entries"]
    assert [e["index"] for e in entries] == [e.index for e in ledger.history("item-1")]
    assert entries[0]["entry"]["prev"] is None
    for before, after in itertools.pairwise(entries):
        assert after["entry"]["prev"] == before["leaf_hash"]


def test_cli_errors_exit_2_with_one_line(ledger: Ledger, db_url: str, key_path: Path, tmp_path: Path) -> None:
    ledger.append_batch(sample_entries(3))
    beyond = run_cli(["ledger", "prove", "--index", "1", "--size", "9", "--db", db_url], key_path, tmp_path)
    assert beyond.returncode == 2
    assert beyond.stderr.startswith("error:") and "Traceback" not in beyond.stderr
    bad = run_cli(["ledger", "consistency", "--from", "3", "--to", "2", "--db", db_url], key_path, tmp_path)
    assert bad.returncode == 2


def test_from_settings_uses_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", log_origin=ORIGIN)
    with Ledger.from_settings(settings) as led:
        led.append_batch(sample_entries(2))
        assert led.origin == ORIGIN
    assert (tmp_path / "data" / "authenticator.db").is_file()
    key_file = tmp_path / "data" / "log.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with Ledger.from_settings(settings) as again:
        assert again.size() == 2
