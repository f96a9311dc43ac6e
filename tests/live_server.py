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
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from authenticator.config import Settings
from tests.ledger_samples import REPO_ROOT

CLI = str(Path(sys.executable).parent / "authenticator")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving_in_thread(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a thread of this process, for the tests that need real HTTP (a
    browser, a CLI) and the app's state at hand; yields the base URL, stops the server on exit."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


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


# --- Raw HTTP/1.1 on a socket: what no well-behaved client library will send ----------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names (the last value of a repeated name)
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_raw_response(data: bytes) -> RawResponse:
    """The first HTTP/1.1 response in ``data`` (a ``Content-Length`` body, or up to the end)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no complete response head in {data[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    body = rest[: int(length)] if length is not None else rest
    return RawResponse(status, headers, body)


def _complete(data: bytearray) -> bool:
    head, sep, rest = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value)
    return False


def raw_http(base: str, request: bytes | Iterable[bytes], *, timeout: float = 60) -> RawResponse:
    """Send ``request`` (bytes, or chunks sent one after another) on a fresh connection to the
    server at ``base`` and read its answer: up to its ``Content-Length``, or until the server
    closes the connection (or ``timeout``). Sending runs in its own thread, so a server that answers and stops reading
    before the client has sent everything (a flood) is read all the same; send errors (the
    server closed first) are ignored."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    chunks = [request] if isinstance(request, bytes) else request
    sock = socket.create_connection((host, int(port)), timeout=timeout)

    def send_all() -> None:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass

    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:  # reset after the answer
                break
            if not data:
                break
            received += data
            if _complete(received):
                break
    finally:
        sock.close()
        sender.join(timeout=timeout)
    return parse_raw_response(bytes(received))
