"""Several writer processes never fork or gap the log; a killed writer loses nothing it returned."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.ledger.log import Ledger
from authenticator.ledger.merkle import verify_inclusion
from authenticator.ledger.verify import verify_ledger
from tests.ledger_samples import ORIGIN, REPO_ROOT, run_cli


def _worker(db_url: str, key_path: Path, worker: int, total: int, max_batch: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.ledger_worker",
            db_url,
            str(key_path),
            ORIGIN,
            str(worker),
            str(total),
            str(max_batch),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _receipts(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_four_processes_append_1000_entries_each(
    db_url: str, key_path: Path, signer: CheckpointSigner, tmp_path: Path
) -> None:
    # No set-up first: the four racing first opens must also migrate and sign the empty tree once.
    procs = [_worker(db_url, key_path, w, 1000, 20) for w in range(4)]
    receipts = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        receipts += _receipts(out)
    assert len(receipts) == 4000
    assert sorted(int(r["index"]) for r in receipts) == list(range(4000))  # type: ignore[call-overload]
    led = Ledger.open(db_url, signer)
    try:
        assert led.size() == 4000
        for r in receipts[::37]:
            index, size = int(r["index"]), int(r["size"])  # type: ignore[call-overload]
            leaf = base64.b64decode(str(r["leaf_hash"]))
            assert led.entry(index).leaf_hash == leaf
            assert led.checkpoint_at(size) is not None
            verify_inclusion(index, size, leaf, led.inclusion_proof(index, size), led.root_at(size))
        report = verify_ledger(led)
        assert report.ok, report.problems
        assert report.items_checked == 10
    finally:
        led.close()
    cli = run_cli(["ledger", "verify", "--db", db_url], key_path, tmp_path)
    assert cli.returncode == 0, cli.stderr


def test_writer_killed_mid_batch_loses_nothing_it_returned(
    db_url: str, key_path: Path, signer: CheckpointSigner, tmp_path: Path
) -> None:
    Ledger.open(db_url, signer).close()
    returned: list[dict[str, object]] = []
    for round_ in range(2):
        proc = _worker(db_url, key_path, round_, -1, 300)
        assert proc.stdout is not None
        seen = 0
        deadline = time.monotonic() + 120
        while seen < 600 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            returned.append(json.loads(line))
            seen += 1
        time.sleep(0.05 * (round_ + 1))  # let it get into the next batch's transaction
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()  # not communicate(): it would skip what readline buffered
        proc.wait(timeout=60)
        # Complete lines it wrote before dying are returned receipts too; a cut-off last line is not.
        returned += _receipts("\n".join(rest.split("\n")[:-1]))
        assert proc.returncode == -signal.SIGKILL
        assert seen >= 600, "the writer did not produce receipts"
    led = Ledger.open(db_url, signer)
    try:
        report = verify_ledger(led)
        assert report.ok, report.problems
        size = led.size()
        assert size >= len(returned)
        for r in returned:
            assert led.entry(int(r["index"])).leaf_hash == base64.b64decode(str(r["leaf_hash"]))  # type: ignore[call-overload]
        # The log is still writable after the crash.
        led.append_batch([])
    finally:
        led.close()
    cli = run_cli(["ledger", "verify", "--db", db_url], key_path, tmp_path)
    assert cli.returncode == 0, cli.stderr
