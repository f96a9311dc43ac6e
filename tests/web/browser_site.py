"""What the browser tests of the pages share: a real uvicorn server of the real app (SQLite in a
temp dir, the tiny ONNX test model) with its data made through the API, behind a thin ASGI wrapper
that can tamper with the answers of ``GET /v1/items/{id}/trace``; headless Chromium (the Debian
package at /usr/bin/chromium, driven by the ``playwright`` package; no browser is downloaded) and
a tab per test; and the helpers that read a page's verdict and compare it with ``authenticator
trace verify``. The tests are ``tests/web/test_web_*.py``; they import the fixtures from here.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from api.app import create_app
from authenticator.cli import app as cli_app
from authenticator.config import Settings
from authenticator.store.keys import create_key
from tests.conftest import REPO_ROOT, SHARED
from tests.live_server import serving_in_thread
from tests.vision_tiny_model import write_tiny_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Every run saves its screenshots as test artifacts (git-ignored); UPDATE_SCREENSHOTS=1 also
# refreshes the copies in docs/screenshots that the README links to.
SCREENSHOTS = (
    REPO_ROOT / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else REPO_ROOT / "artifacts" / "screenshots"
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
REAL = SHARED / "data" / "real"
VECTORS = SHARED / "testdata" / "merkle"

Tamper = Callable[[dict[str, Any]], None]
UNTAMPERED = "This history is complete and untampered"
"""What the page says once every check holds: about the record, never "verified" about the item."""


# --- tampering ----------------------------------------------------------------------------------


def _flip_time_digit(entry_b64: str) -> str:
    """Change one byte of an entry: a digit of its time, so it stays canonical, valid JSON."""
    data = bytearray(base64.b64decode(entry_b64))
    at = data.index(b'Z","type"') - 1  # last microsecond digit
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    return base64.b64encode(bytes(data)).decode()


def _flip_b64_byte(value: str, offset: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[offset] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def tamper_entry(position: int) -> Tamper:
    def apply(trace: dict[str, Any]) -> None:
        ev = trace["events"][position if position >= 0 else len(trace["events"]) + position]
        ev["entry"] = _flip_time_digit(ev["entry"])

    return apply


def tamper_proof(position: int) -> Tamper:
    def apply(trace: dict[str, Any]) -> None:
        proof = trace["events"][position]["inclusion_proof"]
        proof[0] = _flip_b64_byte(proof[0], 7)

    return apply


def tamper_consistency(trace: dict[str, Any]) -> None:
    hashes = trace["consistency"]["hashes"]
    hashes[-1] = _flip_b64_byte(hashes[-1], 20)


def tamper_signature(trace: dict[str, Any]) -> None:
    text, _, sigs = trace["checkpoint"].rpartition("\n\n")
    dash_name, _, sig = sigs.rstrip("\n").rpartition(" ")
    trace["checkpoint"] = f"{text}\n\n{dash_name} {_flip_b64_byte(sig, 4 + 10)}\n"


def swap_events(position: int) -> Tamper:
    def apply(trace: dict[str, Any]) -> None:
        ev = trace["events"]
        ev[position], ev[position + 1] = ev[position + 1], ev[position]

    return apply


def drop_event(position: int) -> Tamper:
    def apply(trace: dict[str, Any]) -> None:
        del trace["events"][position]

    return apply


class TamperingApp:
    """ASGI wrapper: passes everything through, but rewrites trace answers with ``self.tamper``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.tamper: Tamper | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        tamper = self.tamper
        if scope["type"] != "http" or tamper is None or not re.fullmatch(r"/v1/items/[^/]+/trace", scope["path"]):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        if start.get("status") == 200:
            trace = json.loads(body)
            tamper(trace)
            body = json.dumps(trace).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 500), "headers": headers})
        await send({"type": "http.response.body", "body": body})


# --- the server and its data --------------------------------------------------------------------


@dataclass
class Site:
    base: str
    wrapper: TamperingApp
    app: Any
    platform: str = ""
    lab: str = ""
    item_id: str = ""
    listing_id: str = ""
    verifier_key: str = ""
    events: int = 0
    tmp: Path = field(default_factory=Path)

    def url(self, path: str) -> str:
        return self.base + path


def real_photos(folder: str, n: int) -> list[Path]:
    files = sorted(p for p in (REAL / folder).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
    files.sort(key=lambda p: p.stat().st_size)
    return [p for p in files if p.stat().st_size > 20_000][:n]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def write_model_that_knows(folder: Path, labelled: list[tuple[Path, str]]) -> None:
    """The tiny test model with a reference bank of these photos' own embeddings, so "what is it?"
    answers a category (each photo its own; any other photo its nearest one's) and the pages show
    scored photos, as with the shipped model. Without a bank the tiny model recognises nothing."""
    import numpy as np

    from authenticator.vision.card import ModelCard
    from authenticator.vision.service import Assessor

    card = write_tiny_model(folder)
    assessor = Assessor(ModelCard.load(card), card, Settings(weights_dir=folder, data_dir=folder / "scratch"))
    embeddings = [assessor.model.run(assessor.model_input(p.read_bytes())[None]).embeddings for p, _ in labelled]
    assert all(e is not None for e in embeddings)
    bank = np.stack([e[0] for e in embeddings if e is not None])
    write_tiny_model(folder, bank=(bank, [category for _, category in labelled]))


def _populate(site: Site, http: httpx.Client) -> None:
    """An item with a rich history, all through the API and the lab CLI."""
    ctx = site.app.state.ctx
    admin = create_key(ctx.engine, "admin", "ops").api_key
    r = http.post("/v1/keys", json={"role": "platform", "name": "Acme Resale"}, headers=_bearer(admin))
    assert r.status_code == 201, r.text
    site.platform = r.json()["api_key"]
    r = http.post(
        "/v1/items",
        json={"category": "bag", "brand": "Hermès", "model": "Birkin 30", "serial_number": "X-1234"},
        headers=_bearer(site.platform),
    )
    assert r.status_code == 201, r.text
    site.item_id = item = r.json()["id"]
    photos = real_photos("alauzon13-birkin/authentic", 2)
    r = http.post(
        f"/v1/items/{item}/assessments",
        files=[("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos],
        headers=_bearer(site.platform),
    )
    assert r.status_code == 201, r.text

    runner = CliRunner()
    key_file = site.tmp / "lab.key"
    out = runner.invoke(cli_app, ["lab", "keygen", "--out", str(key_file)])
    assert out.exit_code == 0, out.output
    public_key = json.loads(out.output)["public_key"]
    r = http.post(
        "/v1/labs",
        json={"name": "Geneva Appraisal Lab", "accreditation": "ISO/IEC 17025", "public_key": public_key},
        headers=_bearer(admin),
    )
    assert r.status_code == 201, r.text
    site.lab, lab_id = r.json()["api_key"], r.json()["id"]
    out = runner.invoke(
        cli_app,
        [
            "lab", "sign", item, "--outcome", "authentic", "--method", "physical inspection",
            "--key", str(key_file), "--lab-id", lab_id, "--photos", str(photos[0]), "--date", "2026-11-20",
            "--url", site.base, "--api-key", site.lab,
        ],
    )  # fmt: skip
    assert out.exit_code == 0, out.output

    r = http.post(
        "/v1/listings",
        json={"item_id": item, "title": "Hermès Birkin 30, gold hardware", "price": "9500.00", "currency": "EUR"},
        headers=_bearer(site.platform),
    )
    assert r.status_code == 201, r.text
    site.listing_id = r.json()["id"]
    r = http.post(f"/v1/items/{item}/custody", json={"event": "consigned"}, headers=_bearer(site.platform))
    assert r.status_code == 201, r.text
    # Another item's entries interleave, so proofs and the chain span other leaves.
    r = http.post(
        "/v1/items", json={"category": "watch", "brand": "Rolex", "model": "Datejust"}, headers=_bearer(site.platform)
    )
    assert r.status_code == 201, r.text
    r = http.post(f"/v1/items/{item}/custody", json={"event": "sold"}, headers=_bearer(site.platform))
    assert r.status_code == 201, r.text
    site.verifier_key = http.get("/v1/log/key").json()["verifier_key"]
    site.events = len(http.get(f"/v1/items/{item}/trace").json()["events"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("web")
    write_model_that_knows(
        tmp / "weights",
        [(p, "bag") for p in real_photos("alauzon13-birkin/authentic", 2)]
        + [(p, "sneaker") for p in real_photos("zhengwu123-aj1/authentic", 2)],
    )
    app = create_app(Settings(data_dir=tmp / "data", weights_dir=tmp / "weights", database_url=None))
    wrapper = TamperingApp(app)
    with serving_in_thread(wrapper) as base:
        s = Site(base=base, wrapper=wrapper, app=app, tmp=tmp)
        with httpx.Client(base_url=s.base, timeout=120) as http:
            _populate(s, http)
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: apt-get install -y chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Tab:
    page: Any
    console_errors: list[str]


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield Tab(page, errors)
    finally:
        context.close()


@pytest.fixture
def tampered(site: Site) -> Iterator[Callable[[Tamper | None], None]]:
    def set_tamper(t: Tamper | None) -> None:
        site.wrapper.tamper = t

    try:
        yield set_tamper
    finally:
        site.wrapper.tamper = None


# --- reading the page ---------------------------------------------------------------------------


@dataclass
class PageVerdict:
    state: str
    banner: str
    events: list[dict[str, Any]]
    checkpoint: dict[str, str]
    consistency: dict[str, str] | None = None


def open_trace(tab: Tab, site: Site) -> PageVerdict:
    page = tab.page
    page.goto(site.url(f"/t/{site.item_id}"))
    page.wait_for_selector("body[data-verification]", state="attached", timeout=30_000)
    rows = page.eval_on_selector_all(
        "#timeline li.event",
        """rows => rows.map(r => ({
            position: Number(r.dataset.position), index: Number(r.dataset.index), state: r.dataset.state,
            mark: r.querySelector('.mark').textContent, title: r.querySelector('.event-title').textContent,
            reason: r.querySelector('.reason').textContent}))""",
    )
    cp = page.eval_on_selector(
        "#checkpoint-check", "r => ({state: r.dataset.state, reason: r.querySelector('.reason').textContent})"
    )
    consistency = page.eval_on_selector(
        "#consistency-check",
        "r => r.hidden ? null : ({state: r.dataset.state, reason: r.querySelector('.reason').textContent})",
    )
    return PageVerdict(
        state=page.evaluate("document.body.dataset.verification"),
        banner=page.inner_text("#verdict"),
        events=rows,
        checkpoint=cp,
        consistency=consistency,
    )


def cli_verify(site: Site, old_checkpoint: Path | None = None) -> dict[str, Any]:
    """``authenticator trace verify URL --key K --json`` on the same URL the page fetches."""
    args = ["trace", "verify", site.url(f"/v1/items/{site.item_id}/trace"), "--key", site.verifier_key, "--json"]
    if old_checkpoint is not None:
        args += ["--checkpoint", str(old_checkpoint)]
    out = CliRunner().invoke(cli_app, args)
    assert out.exit_code in (0, 1), out.output
    report: dict[str, Any] = json.loads(out.stdout)
    assert (out.exit_code == 0) == report["ok"]
    return report


def assert_agrees_with_cli(verdict: PageVerdict, report: dict[str, Any]) -> None:
    assert (verdict.state == "verified") == report["ok"]
    if report["events"]:
        cli_failed = [i for i, e in enumerate(report["events"]) if not e["ok"]]
        page_failed = [e["position"] for e in verdict.events if e["state"] == "fail"]
        assert page_failed == cli_failed
        assert [e["index"] for e in verdict.events] == [e["index"] for e in report["events"]]
    cli_checkpoint_failed = any(f.startswith("checkpoint") for f in report["failures"])
    assert (verdict.checkpoint["state"] == "fail") == cli_checkpoint_failed


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(PHONE)


A11Y_PROBLEMS = """() => {
    const out = [];
    if (!document.documentElement.lang) out.push("html has no lang");
    if (document.querySelectorAll("h1").length !== 1) out.push("not exactly one h1");
    for (const img of document.querySelectorAll("img")) if (!img.alt) out.push("img without alt");
    for (const svg of document.querySelectorAll("svg")) {
        if (svg.getAttribute("role") !== "img" || !svg.querySelector("title")) out.push("svg without role/title");
    }
    for (const input of document.querySelectorAll("input, select, textarea")) {
        if (input.type === "hidden") continue;
        const labelled = (input.labels && input.labels.length) || input.getAttribute("aria-label");
        if (!labelled) out.push("unlabelled " + (input.id || input.name));
    }
    for (const b of document.querySelectorAll("button, a")) {
        if (!(b.textContent.trim() || b.getAttribute("aria-label"))) out.push("control without a name");
    }
    return out;
}"""


NO_OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > width + 1)
        .map(e => e.tagName + '.' + e.className).slice(0, 5);
    return {scroll: document.documentElement.scrollWidth, width, wide};
}"""


def assert_fits(page: Any, label: str) -> None:
    fit = page.evaluate(NO_OVERFLOW)
    assert fit["scroll"] <= fit["width"] and not fit["wide"], (label, fit)
