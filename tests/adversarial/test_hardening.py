"""Small hardening (issue 11, point 7), each written against what the old code did.

* Pages, QR codes and CLI hints take their address from ``AUTHENTICATOR_PUBLIC_URL``, never from
  the Host header (``Host: evil.example`` used to give a QR code to evil.example); unset, they
  are paths only. The QR codes are decoded with OpenCV, not with our encoder.
* The SQLite database, its ``-wal`` and ``-shm`` are 0600 and blobs 0600 in 0700 folders,
  whatever the umask (they were 0644 / 0640 in 0755 folders).
* Every blob answer has ``nosniff``, a type taken from the magic bytes and a sandboxing CSP (an
  HTML part uploaded as ``image/jpeg`` used to come back without ``nosniff``).
* ``/docs`` loads Swagger UI from this origin (the ``fastapi-offline`` package), never from a
  CDN, under a CSP with no inline script; checked in a real Chromium too.

The in-process deployments use the tiny ONNX test model; the last tests run a real
``authenticator serve`` configured through the environment, as an operator would.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fastapi_offline
import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.docs import DOCS_CSP
from api.pages.addresses import trace_addresses
from api.routers.assessments import BLOB_CSP, blob_response
from authenticator.config import Settings
from authenticator.db import create_ledger_engine
from authenticator.store.blobs import BlobStore
from tests.api_helpers import Actors, bearer, make_actors, new_item, real_photos
from tests.live_server import bootstrap_admin, server_env, start_server
from tests.web.browser_site import CHROMIUM, CHROMIUM_ARGS
from tests.web.page_parsing import decode_qr, inline_scripts

EVIL = "evil.example"
PUBLIC = "https://auth.example.com/verify"
HOSTILE_HOSTS = [
    {"Host": EVIL},
    {"Host": f"{EVIL}:8443"},
    {"X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "https", "Forwarded": f"host={EVIL};proto=https"},
]
HTML_PART = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG_PART = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# --- the deployments ----------------------------------------------------------------------------


@dataclass
class Deployment:
    client: TestClient
    settings: Settings
    actors: Actors
    item: str
    listing: str
    assessment: dict[str, Any]


@contextmanager
def _deploy(settings: Settings) -> Iterator[Deployment]:
    """A fresh deployment with an item, a listing and an assessment whose second and third
    "photos" are HTML and SVG sent as ``image/jpeg`` (stored, judged unreadable)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        actors = make_actors(client)
        item = new_item(client, actors.platform)
        r = client.post(
            "/v1/listings",
            json={"item_id": item, "title": "Birkin 30", "price": "9500.00", "currency": "EUR"},
            headers=bearer(actors.platform),
        )
        assert r.status_code == 201, r.text
        listing = r.json()["id"]
        photo = real_photos(1)[0]
        r = client.post(
            f"/v1/items/{item}/assessments",
            files=[
                ("photos", (photo.name, photo.read_bytes(), "image/jpeg")),
                ("photos", ("page.jpg", HTML_PART, "image/jpeg")),
                ("photos", ("drawing.jpg", SVG_PART, "image/jpeg")),
            ],
            data={"heatmaps": "true"},
            headers=bearer(actors.platform),
        )
        assert r.status_code == 201, r.text
        yield Deployment(client, settings, actors, item, listing, r.json())


@pytest.fixture(scope="module")
def plain(api_tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """No public URL configured (the default)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("plain"), weights_dir=api_tiny_weights, database_url=None)
    with _deploy(settings) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def public(api_tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("public"), weights_dir=api_tiny_weights, public_url=PUBLIC + "/"
    )
    with _deploy(settings) as deployment:
        yield deployment


def _qr_text(html: str) -> str:
    svg = re.search(r'<svg xmlns="http://www.w3.org/2000/svg".*?</svg>', html, flags=re.S)
    assert svg is not None, "no QR code on the page"
    text = decode_qr(svg.group(0))
    assert text is not None, "OpenCV found no QR code"
    return text


def _cli_hint(html: str) -> str:
    hint = re.search(r'<code id="cli-hint"[^>]*>([^<]*)</code>', html)
    assert hint is not None
    return hint.group(1)


def _no_evil(r: httpx.Response) -> None:
    assert EVIL not in r.text, r.text[max(0, r.text.find(EVIL) - 200) : r.text.find(EVIL) + 100]
    for name, value in r.headers.items():
        assert EVIL not in value, (name, value)


# --- the public base URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, None),
        ("", None),
        ("https://auth.example.com", "https://auth.example.com"),
        ("https://auth.example.com/", "https://auth.example.com"),
        ("http://127.0.0.1:8000//", "http://127.0.0.1:8000"),
        ("https://example.com/verify/", "https://example.com/verify"),
        ("HTTPS://xn--bcher-kva.example", "HTTPS://xn--bcher-kva.example"),
    ],
)
def test_public_url_accepted(given: str | None, stored: str | None) -> None:
    assert Settings(public_url=given).public_url == stored


@pytest.mark.parametrize(
    "given",
    [
        "auth.example.com",
        "//auth.example.com",
        "/relative/path",
        "ftp://auth.example.com",
        "javascript:alert(1)",
        "https://",
        "https:///path",
        "https://auth.example.com/?next=evil",
        "https://auth.example.com/#top",
        "https://auth.example.com/?",
        "https://user:secret@auth.example.com",
        "https://auth.example.com/a b",
        "https://auth.example.com/\u202e",
        'https://auth.example.com/"onmouseover="x',
        "https://auth.example.com:99999",
        "https://auth.example.com\nX-Injected: 1",
    ],
)
def test_public_url_refused(given: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        Settings(public_url=given)


def test_public_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHENTICATOR_PUBLIC_URL", "https://auth.example.com/v/")
    assert Settings().public_url == "https://auth.example.com/v"
    monkeypatch.setenv("AUTHENTICATOR_PUBLIC_URL", "https://auth.example.com/?x=1")
    with pytest.raises(ValidationError):
        Settings()


def test_trace_addresses_without_and_with_a_public_url() -> None:
    relative = trace_addresses(None, "itm_1")
    assert relative["address"] == relative["qr_text"] == "/t/itm_1"
    assert relative["trace_address"] == "/v1/items/itm_1/trace"
    assert relative["relative_address"] is True
    assert "path only" in relative["qr_title"]
    absolute = trace_addresses(PUBLIC, "itm_1")
    assert absolute["address"] == absolute["qr_text"] == f"{PUBLIC}/t/itm_1"
    assert absolute["trace_address"] == f"{PUBLIC}/v1/items/itm_1/trace"
    assert absolute["relative_address"] is False
    assert trace_addresses(PUBLIC, "a/../b?c#d")["address"] == f"{PUBLIC}/t/a%2F..%2Fb%3Fc%23d"


@pytest.mark.parametrize("headers", HOSTILE_HOSTS, ids=["host", "host-port", "forwarded"])
def test_host_header_never_reaches_the_pages(plain: Deployment, headers: dict[str, str]) -> None:
    """Unset public URL: the trace page's address, QR code and CLI hint are paths."""
    c = plain.client
    trace = c.get(f"/t/{plain.item}", headers=headers)
    assert trace.status_code == 200
    _no_evil(trace)
    assert _qr_text(trace.text) == f"/t/{plain.item}"
    assert f'<a href="/t/{plain.item}" id="page-address"' in trace.text
    assert 'data-relative-address="true"' in trace.text  # the page's script adds the browser's origin
    assert _cli_hint(trace.text) == f"authenticator trace verify /v1/items/{plain.item}/trace --key KEY"
    for path in (f"/l/{plain.listing}", "/assess", "/t/itm_nothere", "/l/lst_nothere", "/docs", "/"):
        r = c.get(path, headers=headers, follow_redirects=False)
        assert r.status_code in (200, 307, 404), path
        _no_evil(r)
    for ref in re.findall(r'(?:src|href)="([^"]+)"', trace.text + c.get(f"/l/{plain.listing}", headers=headers).text):
        assert ref.startswith(("/", "#")), ref  # relative links only


@pytest.mark.parametrize("headers", [{}, *HOSTILE_HOSTS], ids=["none", "host", "host-port", "forwarded"])
def test_public_url_is_the_address_on_the_page(public: Deployment, headers: dict[str, str]) -> None:
    trace = public.client.get(f"/t/{public.item}", headers=headers)
    assert trace.status_code == 200
    _no_evil(trace)
    assert "testserver" not in trace.text
    assert _qr_text(trace.text) == f"{PUBLIC}/t/{public.item}"
    assert f'<a href="{PUBLIC}/t/{public.item}" id="page-address"' in trace.text
    assert "data-relative-address" not in trace.text
    assert _cli_hint(trace.text) == f"authenticator trace verify {PUBLIC}/v1/items/{public.item}/trace --key KEY"


# --- file modes ---------------------------------------------------------------------------------


def test_database_files_are_owner_only_after_a_write(plain: Deployment) -> None:
    new_item(plain.client, plain.actors.platform)  # a write: the WAL holds it
    db = plain.settings.data_dir / "authenticator.db"
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    assert all(f.exists() for f in files), sorted(p.name for p in db.parent.iterdir())
    assert {f.name: oct(_mode(f)) for f in files} == {f.name: "0o600" for f in files}


def test_database_files_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    """A new database under umask 0 and an old one left 0644 (with its WAL) both end up 0600."""
    with _umask(0):
        new = tmp_path / "fresh" / "deeper" / "ledger.db"
        engine = create_ledger_engine(f"sqlite:///{new}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            files = [new, Path(f"{new}-wal"), Path(f"{new}-shm")]
            assert [oct(_mode(f)) for f in files] == ["0o600"] * 3
        engine.dispose()
        assert _mode(new.parent) == 0o700  # created here
    old = tmp_path / "old.db"
    raw = sqlite3.connect(old)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.execute("INSERT INTO t VALUES (1)")
    raw.commit()  # raw stays open: its -wal and -shm stay on disk
    files = [old, Path(f"{old}-wal"), Path(f"{old}-shm")]
    for f in files:
        os.chmod(f, 0o644)
    engine = create_ledger_engine(f"sqlite:///{old}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalar() == 1
        assert [oct(_mode(f)) for f in files] == ["0o600"] * 3
    engine.dispose()
    raw.close()


def test_blobs_owner_only_whatever_the_umask(plain: Deployment, tmp_path: Path) -> None:
    blob_root = plain.settings.blob_dir
    stored = list(blob_root.rglob("*"))
    assert stored, "the deployment stored no blob"
    for p in [blob_root, *stored]:
        assert _mode(p) == (0o700 if p.is_dir() else 0o600), (p, oct(_mode(p)))
    with _umask(0):
        store = BlobStore(tmp_path / "blobs")
        sha = store.put(b"photo of someone's bag")
        path = tmp_path / "blobs" / sha[:2] / sha[2:4] / sha
        assert [_mode(p) for p in (tmp_path / "blobs", path.parent.parent, path.parent, path)] == [0o700] * 3 + [0o600]
    old = tmp_path / "old-blobs"
    (old / "ab").mkdir(parents=True)
    os.chmod(old, 0o755)
    BlobStore(old)
    assert _mode(old) == 0o700  # an older store is closed to others when opened


# --- blob answers -------------------------------------------------------------------------------


def test_every_blob_answer_is_unsniffable(plain: Deployment) -> None:
    photos = plain.assessment["photos"]
    by_sha = {hashlib.sha256(HTML_PART).hexdigest(): "html", hashlib.sha256(SVG_PART).hexdigest(): "svg"}
    seen = set()
    for photo in photos:
        r = plain.client.get(
            f"/v1/assessments/{plain.assessment['id']}/photos/{photo['sha256']}", headers=bearer(plain.actors.platform)
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-security-policy"] == BLOB_CSP == "default-src 'none'; sandbox"
        kind = by_sha.get(photo["sha256"])
        if kind is None:
            assert r.headers["content-type"] in ("image/jpeg", "image/png")
            assert r.headers["content-disposition"].startswith("inline;")
        else:
            seen.add(kind)
            assert r.content in (HTML_PART, SVG_PART)
            assert r.headers["content-type"] == "application/octet-stream"
            assert r.headers["content-disposition"].startswith("attachment;")
        if photo.get("heatmap_url"):
            seen.add("heatmap")
            h = plain.client.get(photo["heatmap_url"], headers=bearer(plain.actors.platform))
            assert h.status_code == 200
            assert h.headers["content-type"] == "image/png"
            assert h.headers["x-content-type-options"] == "nosniff"
            assert h.headers["content-security-policy"] == BLOB_CSP
    assert {"html", "svg"} <= seen


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00", "application/octet-stream"),  # an MP4 is no photo
        (b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00", "application/octet-stream"),
        (b"GIF89a" + b"\x00" * 16, "application/octet-stream"),
        (HTML_PART, "application/octet-stream"),
        (SVG_PART, "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_blob_type_from_magic_bytes_only(data: bytes, media_type: str) -> None:
    r = blob_response(data, '../evil"name\r\n')
    assert r.media_type == media_type
    assert r.headers["x-content-type-options"] == "nosniff"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;" if media_type == "application/octet-stream" else "inline;")
    assert re.fullmatch(r'(attachment|inline); filename="[A-Za-z0-9-]+\.[a-z]+"', disposition), disposition


# --- /docs --------------------------------------------------------------------------------------


def test_docs_without_a_cdn_and_with_a_csp(plain: Deployment) -> None:
    c = plain.client
    r = c.get("/docs")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert csp == DOCS_CSP
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in csp and "http" not in csp and "*" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert inline_scripts(r.text) == []
    assert re.findall(r"<script[^>]*>([^<]+)</script>", r.text) == []  # no script body at all
    assert "style=" not in r.text and "<style" not in r.text
    refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert refs and all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    assert "http:" not in r.text and "https:" not in r.text and "//" not in r.text
    assets = {ref: c.get(ref) for ref in refs}
    for ref, answer in assets.items():
        assert answer.status_code == 200 and answer.content, ref
        assert answer.headers["x-content-type-options"] == "nosniff", ref
    packaged = Path(fastapi_offline.__file__).parent / "static"
    assert assets["/docs-assets/swagger-ui-bundle.js"].content == (packaged / "swagger-ui-bundle.js").read_bytes()
    assert assets["/docs-assets/swagger-ui.css"].content == (packaged / "swagger-ui.css").read_bytes()
    assert "/openapi.json" in r.text and c.get("/openapi.json").status_code == 200
    redoc = c.get("/redoc", follow_redirects=False)
    assert redoc.status_code == 307 and redoc.headers["location"] == "/docs"


# --- a real server, configured through the environment ------------------------------------------


@dataclass
class Live:
    base: str
    data_dir: Path
    platform: str


@pytest.fixture(scope="module")
def live(api_tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live-hardening")
    settings = Settings(data_dir=tmp / "data", weights_dir=api_tiny_weights)
    env = server_env(settings, public_url=PUBLIC + "/")
    admin = bootstrap_admin(env)
    server = start_server(env, tmp / "server.log")
    try:
        r = httpx.post(f"{server.base}/v1/keys", json={"role": "platform", "name": "Acme"}, headers=bearer(admin))
        assert r.status_code == 201, r.text
        yield Live(server.base, settings.data_dir, r.json()["api_key"])
    finally:
        server.stop()


def test_live_server_takes_its_address_from_the_environment(live: Live) -> None:
    r = httpx.post(
        f"{live.base}/v1/items",
        json={"category": "bag", "brand": "Hermès", "model": "Kelly"},
        headers=bearer(live.platform),
    )
    assert r.status_code == 201, r.text
    item = r.json()["id"]
    photo = real_photos(1)[0]
    r = httpx.post(
        f"{live.base}/v1/items/{item}/assessments",
        files=[("photos", (photo.name, photo.read_bytes(), "image/jpeg"))],
        headers=bearer(live.platform),
        timeout=120,
    )
    assert r.status_code == 201, r.text
    for headers in HOSTILE_HOSTS:
        page = httpx.get(f"{live.base}/t/{item}", headers=headers)
        assert page.status_code == 200
        _no_evil(page)
        assert _qr_text(page.text) == f"{PUBLIC}/t/{item}"
        assert _cli_hint(page.text) == f"authenticator trace verify {PUBLIC}/v1/items/{item}/trace --key KEY"
    # The real process (its own umask, the CLI's start-up) keeps the files owner-only too.
    db = live.data_dir / "authenticator.db"
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        assert _mode(f) == 0o600, (f.name, oct(_mode(f)))
    blobs = list((live.data_dir / "blobs").rglob("*"))
    assert blobs and all(_mode(p) == (0o700 if p.is_dir() else 0o600) for p in blobs)


@pytest.mark.browser
def test_docs_in_chromium(live: Live) -> None:
    """Swagger UI renders every operation under the page's CSP: no violation, no other origin."""
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: apt-get install -y chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            origins: set[str] = set()
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda req: origins.add("{0.scheme}://{0.netloc}".format(urlsplit(req.url))))
            page.goto(f"{live.base}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            assert page.locator(".opblock").count() >= 10
            page.locator(".opblock-summary").first.click()
            page.wait_for_selector(".opblock-body", timeout=10_000)
            assert errors == []  # a CSP violation is reported on the console
            assert origins == {live.base}
        finally:
            browser.close()


def test_data_dir_made_by_the_service_is_owner_only(tmp_path: Path) -> None:
    """The data folder (database, log key, blobs of third parties' photos) is made 0700."""
    from authenticator.ledger.log import Ledger

    data = tmp_path / "fresh" / "data"
    old = os.umask(0o022)
    try:
        Ledger.from_settings(Settings(data_dir=data, database_url=None)).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_opening_an_engine_keeps_this_process_sqlite_locks(tmp_path: Path) -> None:
    """Another engine on a database this process already has open must not open and close a file
    descriptor on it: POSIX drops every lock a process holds on a file when any of its descriptors
    on that file is closed, so SQLite's locks vanish, and another process then believes it is
    alone (in WAL mode its last connection checkpoints and removes the WAL under our feet: the
    "disk I/O error" a test saw after a `projections rebuild` subprocess)."""
    import subprocess
    import sys

    from authenticator.db import create_ledger_engine

    path = tmp_path / "held.db"
    create_ledger_engine(f"sqlite:///{path}").dispose()  # creates the file (0600)
    held = sqlite3.connect(path, isolation_level=None)
    held.execute("CREATE TABLE t (x)")
    held.execute("BEGIN")
    held.execute("SELECT count(*) FROM t").fetchone()  # a SHARED lock on the database file
    try:
        create_ledger_engine(f"sqlite:///{path}").dispose()
        probe = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
            "try:\n    c.execute('BEGIN EXCLUSIVE')\nexcept sqlite3.OperationalError as e:\n    print(e)\n"
            "else:\n    print('got the exclusive lock')\n"
        )
        out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "database is locked", out.stdout + out.stderr
    finally:
        held.execute("ROLLBACK")
        held.close()
