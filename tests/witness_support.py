"""A real ``authenticator witness serve`` process for the tests (its own key and state folder)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from authenticator.ledger.cosignature import CosignatureVerifier
from authenticator.witness.protocol import format_add_checkpoint
from tests.ledger_samples import REPO_ROOT
from tests.live_server import CLI, free_port


@dataclass
class WitnessServer:
    base: str
    vkey: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier.from_verifier_key(self.vkey)

    def add(self, old: int, proof: Sequence[bytes], note: str) -> httpx.Response:
        return httpx.post(f"{self.base}/add-checkpoint", content=format_add_checkpoint(old, proof, note), timeout=30)

    def add_raw(self, body: bytes) -> httpx.Response:
        return httpx.post(f"{self.base}/add-checkpoint", content=body, timeout=30)


def witness_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHENTICATOR_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@contextmanager
def running_witness(data_dir: Path, name: str, log_keys: Sequence[str]) -> Iterator[WitnessServer]:
    """``authenticator witness key`` then ``witness serve`` on a free port, until the block ends."""
    env = witness_env()
    key = subprocess.run(
        [CLI, "witness", "key", "--name", name, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    port = free_port()
    logs = [arg for k in log_keys for arg in ("--log", k)]
    args = ["witness", "serve", "--name", name, "--data-dir", str(data_dir), "--port", str(port), *logs]
    log_path = data_dir.parent / f"{data_dir.name}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen([CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = WitnessServer(f"http://127.0.0.1:{port}", key, data_dir, proc, log_path)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{server.base}/", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the witness did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
