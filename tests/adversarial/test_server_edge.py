"""The server edge of a real ``authenticator serve``: what happens before a request reaches a handler.

- a request head over the limit is answered 431, a request target over the limit 414, and a
  header flood from one client does not keep ``/healthz`` from the others;
- what HTTP/1.1 refuses (a bad ``Content-Length``, DEL in a header value, a malformed request
  line) is answered 400;
- every over-limit body, with a ``Content-Length`` or chunked, JSON or multipart, is answered 413;

each as RFC 9457 ``application/problem+json``. The requests are written on raw sockets: a client
library would refuse to send most of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from authenticator.config import Settings
from tests.api_helpers import bearer
from tests.live_server import LiveServer, RawResponse, bootstrap_admin, raw_http, server_env, start_server

MAX_BODY = 1024 * 1024  # the multipart limit of this deployment (small, so a test stays cheap)
MAX_JSON = 256 * 1024  # the default JSON limit
MB = 1024 * 1024


@pytest.fixture(scope="module")
def live(api_tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A fresh server (SQLite) and a platform key."""
    tmp = tmp_path_factory.mktemp("edge")
    settings = Settings(data_dir=tmp / "data", weights_dir=api_tiny_weights)
    env = server_env(settings, api_max_body_bytes=str(MAX_BODY))
    admin = bootstrap_admin(env)
    server = start_server(env, tmp / "server.log")
    try:
        r = httpx.post(f"{server.base}/v1/keys", json={"role": "platform", "name": "Edge"}, headers=bearer(admin))
        assert r.status_code == 201, r.text
        yield server, str(r.json()["api_key"])
    finally:
        server.stop()
    log = server.log_text()
    assert "Traceback" not in log and "Logging error" not in log, log[-3000:]


def assert_problem(r: RawResponse | httpx.Response, status: int, code: str) -> None:
    got, body = (r.status_code, r.content) if isinstance(r, httpx.Response) else (r.status, r.body)
    assert got == status, body[:500]
    assert r.headers["content-type"] == "application/problem+json", r.headers
    problem = r.json()
    assert problem["status"] == status and problem["code"] == code, problem
    assert set(problem) >= {"type", "title", "status", "detail", "code"}
    assert problem["type"].endswith("/" + code)


def head(target: str = "/healthz", *lines: str, method: str = "GET") -> bytes:
    return "\r\n".join([f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *lines, "", ""]).encode("latin-1")


def still_serving(server: LiveServer) -> None:
    r = httpx.get(f"{server.base}/healthz", timeout=30)
    assert r.status_code == 200, r.text


# --- request head limits ----------------------------------------------------------------------


def test_header_flood_gets_431_while_other_clients_are_served(live: tuple[LiveServer, str]) -> None:
    """64 MB of one header from one client; others keep getting ``/healthz`` meanwhile."""
    server, _ = live

    def flood_chunks() -> Iterator[bytes]:
        yield b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: "
        chunk = b"a" * MB
        for _ in range(64):
            yield chunk

    flood: dict[str, RawResponse] = {}
    sender = threading.Thread(target=lambda: flood.setdefault("r", raw_http(server.base, flood_chunks())))
    began = time.monotonic()
    sender.start()
    answers: list[tuple[int, float]] = []
    with httpx.Client(base_url=server.base, timeout=60) as http:
        while sender.is_alive() or len(answers) < 5:
            t0 = time.monotonic()
            status = http.get("/healthz").status_code
            answers.append((status, time.monotonic() - t0))
            if time.monotonic() - began > 120:
                break
    sender.join(timeout=120)
    assert all(status == 200 for status, _ in answers), answers
    print(f"/healthz during the flood: {len(answers)} answers, slowest {max(s for _, s in answers) * 1000:.1f} ms")
    assert_problem(flood["r"], 431, "request_header_too_large")
    assert flood["r"].headers["connection"] == "close"
    still_serving(server)


def test_many_headers_over_the_limit_get_431(live: tuple[LiveServer, str]) -> None:
    server, _ = live
    lines = [f"X-Filler-{i}: {'b' * 100}" for i in range(400)]  # ~44 KB of ordinary headers
    assert_problem(raw_http(server.base, head("/healthz", *lines)), 431, "request_header_too_large")
    ok = raw_http(server.base, head("/healthz", *lines[:100]))  # ~11 KB: under the 32 KiB limit
    assert ok.status == 200, ok.body


def test_long_request_target_gets_414(live: tuple[LiveServer, str]) -> None:
    server, _ = live
    huge = raw_http(server.base, head("/healthz?q=" + "x" * 100_000))  # past the whole head limit
    assert_problem(huge, 414, "uri_too_long")
    assert huge.headers["connection"] == "close"
    # Over the target limit (8 KiB) but well under the head limit: refused all the same.
    assert_problem(raw_http(server.base, head("/healthz?q=" + "x" * 10_000)), 414, "uri_too_long")
    # A long but acceptable target still reaches the app.
    assert raw_http(server.base, head("/healthz?q=" + "x" * 4_000)).status == 200
    still_serving(server)


# --- what HTTP/1.1 refuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            head("/v1/items", "Content-Type: application/json", "Content-Length: abc", method="POST"),
            id="content-length-not-a-number",
        ),
        pytest.param(
            head("/v1/items", "Content-Type: application/json", "Content-Length: 2, 3", method="POST") + b"{}",
            id="content-length-conflicting",
        ),
        pytest.param(
            head("/v1/items", "Content-Type: application/json", "Content-Length: -1", method="POST"),
            id="content-length-negative",
        ),
        pytest.param(head("/healthz", "Idempotency-Key: abc\x7fdef"), id="del-in-header-value"),
        pytest.param(head("/healthz", "Bad Header: x"), id="space-in-header-name"),
        pytest.param(b"GARBAGE\r\n\r\n", id="malformed-request-line"),
        pytest.param(
            head("/v1/items", "Content-Type: application/json", "Transfer-Encoding: chunked", method="POST")
            + b"zz\r\n{}\r\n0\r\n\r\n",
            id="bad-chunk-size",
        ),
    ],
)
def test_protocol_errors_are_problem_json_400(live: tuple[LiveServer, str], request_bytes: bytes) -> None:
    server, _ = live
    r = raw_http(server.base, request_bytes)
    assert_problem(r, 400, "bad_request")
    assert r.headers["connection"] == "close"
    assert b"\x7f" not in r.body and b"abc" not in r.body  # nothing of the request is echoed


# --- body limits ------------------------------------------------------------------------------


def _chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def _item_json(total: int) -> bytes:
    return b'{"category":"bag","brand":"' + b"b" * (total - 40) + b'","model":"x"}'


def _multipart(total: int) -> tuple[bytes, str]:
    boundary = "edge-boundary-0123456789"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    end = f"\r\n--{boundary}--\r\n".encode()
    return part + b"\xff" * (total - len(part) - len(end)) + end, f"multipart/form-data; boundary={boundary}"


def test_json_body_over_the_limit_gets_413_with_or_without_content_length(live: tuple[LiveServer, str]) -> None:
    server, key = live
    body = _item_json(MAX_JSON + 50_000)
    with httpx.Client(base_url=server.base, timeout=60) as http:
        headers = {**bearer(key), "Content-Type": "application/json"}
        assert_problem(http.post("/v1/items", content=body, headers=headers), 413, "payload_too_large")
        chunked = http.post("/v1/items", content=_chunked(body), headers=headers)  # Transfer-Encoding: chunked
        assert chunked.request.headers.get("transfer-encoding") == "chunked"
        assert_problem(chunked, 413, "payload_too_large")
        # Under the limit, chunked, the same endpoint answers as usual.
        small = http.post("/v1/items", content=_chunked(_item_json(190), 50), headers=headers)
        assert small.status_code == 201, small.text
    still_serving(server)


def test_chunked_json_over_the_limit_on_a_raw_socket_gets_413(live: tuple[LiveServer, str]) -> None:
    server, key = live
    body = _item_json(MAX_JSON + 50_000)
    chunks = [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in _chunked(body)] + [b"0\r\n\r\n"]
    start = head(
        "/v1/items",
        f"Authorization: Bearer {key}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        method="POST",
    )
    assert_problem(raw_http(server.base, [start, *chunks]), 413, "payload_too_large")


def test_multipart_body_over_the_limit_gets_413_with_or_without_content_length(live: tuple[LiveServer, str]) -> None:
    server, key = live
    with httpx.Client(base_url=server.base, timeout=60) as http:
        item = http.post("/v1/items", json={"category": "bag", "brand": "B", "model": "M"}, headers=bearer(key))
        assert item.status_code == 201, item.text
        url = f"/v1/items/{item.json()['id']}/assessments"
        body, content_type = _multipart(MAX_BODY + 200_000)
        headers = {**bearer(key), "Content-Type": content_type}
        assert_problem(http.post(url, content=body, headers=headers), 413, "payload_too_large")
        chunked = http.post(url, content=_chunked(body), headers=headers)
        assert chunked.request.headers.get("transfer-encoding") == "chunked"
        assert_problem(chunked, 413, "payload_too_large")
    still_serving(server)
