"""A real ``authenticator serve`` (uvicorn, one or more workers) in its own process group.

The fault and security tests need what an in-process app cannot give: a server they can kill
with SIGKILL, two servers on one database, a server whose log lines go to a file. Settings
come from ``tests.api_support``'s ``api_settings`` fixture and travel as environment variables,
as they would in a deployment.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from authenticator.config import Settings
from tests.ledger_samples import REPO_ROOT

CLI = str(Path(sys.executable).parent / "authenticator")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a deployment with ``settings`` (plus ``AUTHENTICATOR_*`` extras)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHENTICATOR_")}
    env.update(
        AUTHENTICATOR_DATA_DIR=str(settings.data_dir),
        AUTHENTICATOR_WEIGHTS_DIR=str(settings.weights_dir),
        PYTHONPATH=str(REPO_ROOT),
    )
    if settings.database_url:
        env["AUTHENTICATOR_DATABASE_URL"] = settings.database_url
    env.update({f"AUTHENTICATOR_{k.upper()}": v for k, v in extra.items()})
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def bootstrap_admin(env: dict[str, str]) -> str:
    """``authenticator keys create --role admin``, as an operator does on a fresh install."""
    res = run_cli(["keys", "create", "--role", "admin", "--name", "ops"], env)
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)["api_key"])


@dataclass
class LiveServer:
    base: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        """SIGKILL the whole process group: uvicorn's supervisor and every worker at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def launch(env: dict[str, str], log_path: Path, *, workers: int = 1, log_level: str = "info") -> LiveServer:
    """Start ``authenticator serve`` (stdout and stderr to ``log_path``) without waiting for it."""
    port = free_port()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [CLI, "serve", "--port", str(port), "--workers", str(workers), "--log-level", log_level],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return LiveServer(f"http://127.0.0.1:{port}", proc, log_path)


def start_server(env: dict[str, str], log_path: Path, *, workers: int = 1, log_level: str = "info") -> LiveServer:
    """Start the server and wait until ``/readyz`` answers 200 (every worker has its model)."""
    server = launch(env, log_path, workers=workers, log_level=log_level)
    wait_ready(server, workers)
    return server


def wait_ready(server: LiveServer, workers: int = 1) -> None:
    """Wait until ``/readyz`` answers 200 a few times in a row; fail with the server's log."""
    deadline = time.monotonic() + 120
    ready = 0
    while ready < workers + 1:  # a few answers in a row: with several workers, each may answer
        try:
            ready = ready + 1 if httpx.get(f"{server.base}/readyz", timeout=5).status_code == 200 else 0
        except httpx.HTTPError:
            ready = 0
        if server.proc.poll() is not None:
            raise AssertionError(f"the server exited with {server.proc.returncode}:\n{server.log_text()[-3000:]}")
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"the server did not become ready:\n{server.log_text()[-3000:]}")
        time.sleep(0.1)
