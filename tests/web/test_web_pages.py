"""The web pages in a real headless Chromium against a real uvicorn server.

The server runs the real app (SQLite in a temp dir, the tiny ONNX test model) behind a thin
ASGI wrapper that can tamper with the answers of ``GET /v1/items/{id}/trace``: one byte of
an entry, of an inclusion proof or of the checkpoint signature changed, or an event dropped
from the middle of the chain. The page must mark exactly those places ✗ and withhold "This
history is complete and untampered", and its verdict must agree with ``authenticator trace
verify`` fetching the same URL. The data gets there through the API (items, real photos,
a lab certificate signed with the lab CLI, a listing, a custody transfer).

Chromium is the Debian package at /usr/bin/chromium (``apt-get install -y chromium``),
driven by the ``playwright`` package; no browser is downloaded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from api.app import create_app
from authenticator.cli import app as cli_app
from authenticator.config import Settings
from authenticator.store.keys import create_key
from tests.conftest import REPO_ROOT, SHARED
from tests.vision_tiny_model import write_tiny_model

pytestmark = pytest.mark.browser

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(wrapper, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    s = Site(base=f"http://127.0.0.1:{port}", wrapper=wrapper, app=app, tmp=tmp)
    try:
        with httpx.Client(base_url=s.base, timeout=120) as http:
            _populate(s, http)
        yield s
    finally:
        server.should_exit = True
        thread.join(timeout=30)


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


# --- the trace page -----------------------------------------------------------------------------


def test_real_trace_is_verified_in_the_browser(site: Site, tab: Tab) -> None:
    verdict = open_trace(tab, site)
    assert verdict.state == "verified", verdict
    assert UNTAMPERED in verdict.banner
    assert len(verdict.events) == site.events >= 6
    assert all(e["state"] == "ok" and e["mark"] == "✓" for e in verdict.events), verdict.events
    assert verdict.checkpoint["state"] == "ok"
    assert site.verifier_key.split("+")[0] in verdict.checkpoint["reason"]
    titles = [e["title"] for e in verdict.events]
    assert titles[0] == "Registered: Hermès Birkin 30 (bag)"
    assert titles[1].startswith("Photo assessment: ")
    assert titles[2] == "Lab certificate: authentic"
    assert titles[3] == "Listed for sale at 9500.00 EUR"
    assert titles[4:] == ["Custody: Consigned", "Custody: Sold"]
    page_text = tab.page.inner_text("main")
    assert "by Geneva Appraisal Lab (ISO/IEC 17025), inspected on 20 Nov 2026" in page_text
    assert "“Hermès Birkin 30, gold hardware”" in page_text
    assert "by Acme Resale" in page_text and "plt_" not in page_text  # names, not ids
    assert "log entry #" not in page_text  # technical details are one click away...
    assert "model version test-tiny" in (tab.page.text_content("main") or "")  # ...but there
    assert tab.console_errors == []  # no CSP violation, no script error
    assert_agrees_with_cli(verdict, cli_verify(site))
    shoot(tab.page, "trace")


def test_the_page_checks_against_the_key_it_shows(site: Site, tab: Tab) -> None:
    """The key printed on the page is the log's published key; the page trusts only that one."""
    tab.page.goto(site.url(f"/t/{site.item_id}"))
    assert (tab.page.text_content("#log-key") or "").strip() == site.verifier_key  # under "Technical details"
    # The address in the QR code's text is this page's address.
    assert tab.page.inner_text("#page-address") == site.url(f"/t/{site.item_id}")
    assert tab.page.get_attribute("svg.qr", "role") == "img"


@pytest.mark.parametrize(
    ("tamper", "expect"),
    [
        pytest.param(tamper_entry(2), {2: "leaf hash does not match", 3: "hash chain"}, id="entry-byte-middle"),
        pytest.param(tamper_entry(-1), {-1: "leaf hash does not match"}, id="entry-byte-last"),
        pytest.param(tamper_proof(3), {3: "inclusion proof"}, id="proof-byte"),
        pytest.param(drop_event(2), {2: "hash chain"}, id="dropped-middle-event"),
        pytest.param(
            swap_events(3), {3: "hash chain", 4: "not in log order", 5: "hash chain"}, id="two-events-swapped"
        ),
        pytest.param(tamper_signature, {}, id="checkpoint-signature-byte"),
    ],
)
def test_tampered_trace_is_marked_where_it_breaks(
    site: Site, tab: Tab, tampered: Callable[[Tamper | None], None], tamper: Tamper, expect: dict[int, str]
) -> None:
    tampered(tamper)
    verdict = open_trace(tab, site)
    assert verdict.state == "failed"
    assert UNTAMPERED not in verdict.banner
    assert "Not verified" in verdict.banner
    n = len(verdict.events)
    want = {p % n: why for p, why in expect.items()}
    for e in verdict.events:
        if e["position"] in want:
            assert e["state"] == "fail" and e["mark"] == "✗", e
            assert want[e["position"]] in e["reason"], e
        else:
            assert e["state"] == "ok" and e["mark"] == "✓", e
    if expect:
        assert verdict.checkpoint["state"] == "ok"
    else:
        assert verdict.checkpoint["state"] == "fail"
        assert "signature" in verdict.checkpoint["reason"]
    assert_agrees_with_cli(verdict, cli_verify(site))
    if tamper is tamper_signature:
        assert not cli_verify(site)["ok"]
    if expect == {2: "leaf hash does not match", 3: "hash chain"}:
        shoot(tab.page, "trace-tampered")


def test_a_trace_without_its_newest_event_is_refused(site: Site, tab: Tab, tampered: Any) -> None:
    """Whoever serves the trace drops the item's newest event (a revocation, say): every event
    shown still checks out, but the checkpoint commits to the item's head, so the page refuses
    the history and says how many newer events are missing, as the CLI does."""
    tampered(drop_event(-1))
    verdict = open_trace(tab, site)
    assert verdict.state == "failed", verdict
    assert all(e["state"] == "ok" for e in verdict.events)  # what is shown is intact...
    assert "1 newer event of this item is not shown" in verdict.banner  # ...but not all of it
    row = tab.page.eval_on_selector(
        "#completeness-check", "r => ({state: r.dataset.state, reason: r.querySelector('.reason').textContent})"
    )
    assert row["state"] == "fail" and "1 newer event of this item is not shown" in row["reason"], row
    report = cli_verify(site)
    assert not report["ok"] and "1 newer event of this item is not shown" in report["failures"]

    def drop_two(trace: dict[str, Any]) -> None:
        del trace["events"][-2:]

    tampered(drop_two)
    verdict = open_trace(tab, site)
    assert verdict.state == "failed" and "2 newer events of this item are not shown" in verdict.banner


def test_a_trace_signed_by_another_key_is_not_verified(site: Site, tab: Tab, tampered: Any) -> None:
    """A server that re-signs a forged checkpoint with its own key still fails: the page uses the key it shows."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from authenticator.ledger.note import NoteSigner

    signer = NoteSigner(site.verifier_key.split("+")[0], Ed25519PrivateKey.generate())

    def resign(trace: dict[str, Any]) -> None:
        text = trace["checkpoint"].rpartition("\n\n")[0] + "\n"
        trace["checkpoint"] = signer.sign(text)
        trace["verifier_key"] = signer.verifier_key

    tampered(resign)
    verdict = open_trace(tab, site)
    assert verdict.state == "failed"
    assert verdict.checkpoint["state"] == "fail"
    assert "no signature by the log key" in verdict.checkpoint["reason"]
    assert_agrees_with_cli(verdict, cli_verify(site))


def test_a_browser_without_ed25519_gets_no_banner(site: Site, tab: Tab) -> None:
    """Where WebCrypto lacks Ed25519 the signature cannot be checked, so nothing is claimed."""
    tab.page.add_init_script(
        """(() => {
            const subtle = crypto.subtle;
            const importKey = subtle.importKey.bind(subtle);
            subtle.importKey = (format, key, alg, ...rest) =>
                (alg && (alg.name || alg) === "Ed25519")
                    ? Promise.reject(new DOMException("Algorithm: Unrecognized name", "NotSupportedError"))
                    : importKey(format, key, alg, ...rest);
        })();"""
    )
    verdict = open_trace(tab, site)
    assert verdict.state == "failed"
    assert UNTAMPERED not in verdict.banner
    assert verdict.checkpoint["state"] == "fail"
    assert "cannot use the Ed25519 key" in verdict.checkpoint["reason"]
    assert all(e["state"] == "ok" for e in verdict.events)


def test_later_visits_check_that_the_log_only_grew(
    site: Site, tab: Tab, tampered: Callable[[Tamper | None], None]
) -> None:
    """The browser keeps the last checkpoint it verified and checks consistency with it next time."""
    page = tab.page
    first = open_trace(tab, site)
    assert first.state == "verified" and first.consistency is None
    store = "authenticator.checkpoint." + site.verifier_key

    def kept() -> dict[str, Any]:
        value: dict[str, Any] = json.loads(page.evaluate("(k) => localStorage.getItem(k)", store))
        return value

    same = open_trace(tab, site)
    assert same.state == "verified"
    assert same.consistency is not None and same.consistency["state"] == "ok"
    assert "the same tree" in same.consistency["reason"]

    def append_elsewhere() -> None:
        r = httpx.post(
            site.url("/v1/items"),
            json={"category": "bag", "brand": "Dior", "model": "Saddle"},
            headers=_bearer(site.platform),
        )
        assert r.status_code == 201, r.text

    size = kept()["size"]
    append_elsewhere()
    grown = open_trace(tab, site)
    assert grown.state == "verified", grown
    assert grown.consistency is not None and grown.consistency["state"] == "ok"
    assert f"grew from {size} to {size + 1} entries" in grown.consistency["reason"]
    assert kept()["size"] == size + 1

    append_elsewhere()
    old_note = site.tmp / "kept-checkpoint.txt"
    old_note.write_text(kept()["note"])
    tampered(tamper_consistency)
    forged = open_trace(tab, site)
    assert forged.state == "failed"
    assert UNTAMPERED not in forged.banner
    assert forged.consistency is not None and forged.consistency["state"] == "fail"
    assert "consistency proof does not lead to" in forged.consistency["reason"]
    assert all(e["state"] == "ok" for e in forged.events) and forged.checkpoint["state"] == "ok"
    report = cli_verify(site, old_note)
    assert not report["ok"] and any(f.startswith("consistency") for f in report["failures"])
    assert kept()["size"] == size + 1  # a failed check does not replace what the browser kept

    tampered(None)
    honest = open_trace(tab, site)
    assert honest.state == "verified" and honest.consistency is not None
    assert f"grew from {size + 1} to {size + 2} entries" in honest.consistency["reason"]
    assert cli_verify(site, old_note)["ok"]


VECTOR_RUNNER = """async ([kind, cases]) => {
    const T = window.TraceVerify;
    const b = (s) => s ? T.b64decode(s, "vector") : new Uint8Array(0);
    const out = [];
    for (const c of cases) {
        try {
            if (kind === "inclusion") {
                await T.verifyInclusion(c.leafIdx, c.treeSize, b(c.leafHash), (c.proof || []).map(b), b(c.root));
            } else {
                await T.verifyConsistency(c.size1, c.size2, (c.proof || []).map(b), b(c.root1), b(c.root2));
            }
            out.push(true);
        } catch (e) {
            if (!(e instanceof T.VerifyError)) throw e;
            out.push(false);
        }
    }
    return out;
}"""


@pytest.mark.parametrize("kind", ["inclusion", "consistency"])
def test_javascript_merkle_verifier_passes_the_rfc9162_vectors(site: Site, tab: Tab, kind: str) -> None:
    """The JS ports of the RFC 9162 proof checks against the transparency-dev/merkle vectors."""
    cases = [json.loads(p.read_text()) for p in sorted((VECTORS / kind).rglob("*.json"))]
    assert len(cases) > 20
    tab.page.goto(site.url(f"/t/{site.item_id}"))
    results = tab.page.evaluate(VECTOR_RUNNER, [kind, cases])
    assert results == [not c["wantErr"] for c in cases]
    assert True in results and False in results


# --- the listing page ---------------------------------------------------------------------------


def test_listing_page_shows_badge_and_links_to_the_trace(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.url(f"/l/{site.listing_id}"))
    assert page.inner_text("h1") == "Hermès Birkin 30, gold hardware"
    assert "9500.00 EUR" in page.inner_text(".price")
    listing = httpx.get(site.url(f"/v1/listings/{site.listing_id}")).json()
    assert listing["badge"]["level"] == "lab_certified"
    assert page.inner_text("#badge-label") == "Lab certified"
    assert listing["badge"]["reason"] in page.inner_text("#badge")
    shoot(page, "listing")
    page.click("#trace-link")
    page.wait_for_url(site.url(f"/t/{site.item_id}"))
    page.wait_for_selector("body[data-verification='verified']", state="attached", timeout=30_000)
    assert tab.console_errors == []


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


def test_pages_have_labels_alt_text_and_one_heading(site: Site, tab: Tab) -> None:
    for path in (f"/t/{site.item_id}", f"/l/{site.listing_id}", "/assess"):
        tab.page.goto(site.url(path))
        assert tab.page.evaluate(A11Y_PROBLEMS) == [], path


def test_unknown_pages_answer_404_in_html(site: Site, tab: Tab) -> None:
    response = tab.page.goto(site.url("/t/itm_doesnotexist"))
    assert response is not None and response.status == 404
    assert "There is no item itm_doesnotexist" in tab.page.inner_text("main")
    response = tab.page.goto(site.url("/l/lst_doesnotexist"))
    assert response is not None and response.status == 404


# --- the upload page ----------------------------------------------------------------------------


RECORD_PROGRESS = """
    window.__progressLabels = [];
    new MutationObserver(() => {
        const label = document.getElementById("progress-label");
        if (label && !label.closest("[hidden]")) window.__progressLabels.push(label.textContent);
    }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
"""


def test_upload_page_gives_a_verdict_from_real_photos(site: Site, tab: Tab) -> None:
    page = tab.page
    page.add_init_script(RECORD_PROGRESS)
    page.goto(site.url("/assess"))
    page.fill("#api-key", site.platform)
    page.select_option("#category", "sneaker")
    page.fill("#brand", "Nike")
    page.fill("#model", "Air Jordan 1")
    photos = real_photos("zhengwu123-aj1/authentic", 2)
    page.set_input_files("#photos", [str(p) for p in photos])
    assert page.locator("#thumbs li").count() == 2
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=90_000)
    assessment_id = page.text_content("#assessment-id")  # under "Technical details"
    recorded = httpx.get(site.url(f"/v1/assessments/{assessment_id}")).json()
    assert page.get_attribute("#decision", "data-decision") == recorded["decision"]
    assert page.locator("#result-photos li.photo-result").count() == 2
    names = page.locator("#result-photos h4").all_inner_texts()
    assert names == [p.name for p in photos]
    for r in recorded["reasons"]:
        assert r["message"] in page.inner_text("#reasons")
    # The API key stays in this tab's session storage only; the browser keeps the item it registered.
    assert page.evaluate("sessionStorage.getItem('authenticator.apiKey')") == site.platform
    stored = page.evaluate("Object.values(localStorage).join(' ')")
    assert site.platform not in stored and site.platform.split(".")[1] not in stored
    assert json.loads(page.evaluate("localStorage.getItem('authenticator.keptItem')"))["id"] == recorded["item_id"]
    # The upload showed its progress: percentages, then the wait for the model.
    labels = page.evaluate("window.__progressLabels")
    assert any(re.fullmatch(r"Uploading… \d+%", t) for t in labels), labels
    assert "Uploaded; the model is looking at the photos…" in labels
    # Heat maps are fetched with the key and shown with alt text.
    heatmaps = page.locator("#result-photos img[alt^='Heat map of']")
    assert heatmaps.count() == 2
    assert all(h.evaluate("i => i.complete && i.naturalWidth > 0") for h in heatmaps.all())
    assert tab.console_errors == []
    shoot(page, "assess")
    page.click("#trace-link")
    page.wait_for_selector("body[data-verification='verified']", state="attached", timeout=30_000)


def test_upload_page_shows_the_apis_error_for_a_bad_file(site: Site, tab: Tab) -> None:
    bad = site.tmp / "not-a-photo.jpg"
    bad.write_bytes(b"this is a text file, not a JPEG\n" * 20)
    # What the API itself says about this file.
    item = httpx.post(
        site.url("/v1/items"),
        json={"category": "bag", "brand": "Goyard", "model": "Saint Louis"},
        headers=_bearer(site.platform),
    ).json()["id"]
    direct = httpx.post(
        site.url(f"/v1/items/{item}/assessments"),
        files=[("photos", (bad.name, bad.read_bytes(), "image/jpeg"))],
        headers=_bearer(site.platform),
    )
    assert 400 <= direct.status_code < 500
    detail = direct.json()["detail"]

    page = tab.page
    page.goto(site.url("/assess"))
    page.fill("#api-key", site.platform)
    page.fill("#brand", "Goyard")
    page.fill("#model", "Saint Louis")
    page.set_input_files("#photos", str(bad))
    page.click("#submit")
    page.wait_for_selector("#form-error:not([hidden])", timeout=60_000)
    assert page.inner_text("#error-detail") == detail
    assert page.is_hidden("#result")


def test_upload_page_shows_the_apis_error_for_a_bad_key(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.url("/assess"))
    page.fill("#api-key", "key_not.a-real-key")
    page.fill("#brand", "Chanel")
    page.fill("#model", "Classic Flap")
    # Drag and drop: a real photo dropped on the drop zone.
    photo = real_photos("alauzon13-birkin/authentic", 1)[0]
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: "image/jpeg" }));
            return dt;
        }""",
        [photo.name, base64.b64encode(photo.read_bytes()).decode()],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    assert page.locator("#thumbs li").count() == 1
    assert page.inner_text("#photo-count") == "1 photo selected (at most 12)."
    page.click("#submit")
    page.wait_for_selector("#form-error:not([hidden])", timeout=60_000)
    direct = httpx.post(
        site.url("/v1/items"),
        json={"category": "bag", "brand": "Chanel", "model": "Classic Flap"},
        headers=_bearer("key_not.a-real-key"),
    )
    assert direct.status_code == 401
    assert page.inner_text("#error-detail") == direct.json()["detail"]


# --- Firefox (stock Debian firefox-esr, driven over WebDriver BiDi) --------------------------------

FIREFOX = Path("/usr/bin/firefox-esr")


class Bidi:
    """The few WebDriver BiDi commands these tests need, over the websocket Firefox opens."""

    def __init__(self, url: str) -> None:
        from contextlib import ExitStack

        from websockets.sync.client import connect

        self._stack = ExitStack()
        self.ws = self._stack.enter_context(connect(url, max_size=None))
        self.n = 0
        self.call("session.new", {"capabilities": {}})
        self.context = self.call("browsingContext.getTree", {})["contexts"][0]["context"]

    def call(self, method: str, params: dict[str, Any]) -> Any:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.n:
                assert message["type"] == "success", message
                return message["result"]

    def goto(self, url: str) -> None:
        self.call("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def value(self, expression: str) -> Any:
        result = self.call(
            "script.evaluate",
            {"expression": expression, "target": {"context": self.context}, "awaitPromise": False},
        )
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.call("session.end", {})
        finally:
            self._stack.close()


@pytest.fixture(scope="module")
def firefox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bidi]:
    if not FIREFOX.exists():
        pytest.skip("no /usr/bin/firefox-esr (apt-get install -y firefox-esr)")
    import subprocess

    profile = tmp_path_factory.mktemp("firefox-profile")
    port = _free_port()
    proc = subprocess.Popen(
        [str(FIREFOX), "--headless", "--no-remote", "--profile", str(profile), f"--remote-debugging-port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        bidi = None
        while bidi is None:
            try:
                bidi = Bidi(f"ws://127.0.0.1:{port}/session")
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("firefox-esr did not start its WebDriver BiDi server")
                time.sleep(0.25)
        yield bidi
        bidi.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _firefox_trace(firefox: Bidi, site: Site) -> tuple[str, list[str]]:
    firefox.goto(site.url(f"/t/{site.item_id}"))
    deadline = time.monotonic() + 30
    while not (state := firefox.value("document.body.dataset.verification || ''")):
        assert time.monotonic() < deadline, "the page did not finish checking"
        time.sleep(0.1)
    rows = firefox.value(
        "JSON.stringify([...document.querySelectorAll('#timeline li.event')].map(r => r.dataset.state))"
    )
    return str(state), json.loads(rows)


def test_firefox_verifies_the_same_trace_and_catches_the_same_tampering(
    site: Site, firefox: Bidi, tampered: Callable[[Tamper | None], None]
) -> None:
    state, rows = _firefox_trace(firefox, site)
    assert state == "verified"
    assert rows == ["ok"] * site.events
    assert UNTAMPERED in firefox.value("document.getElementById('verdict').innerText")
    tampered(tamper_entry(2))
    state, rows = _firefox_trace(firefox, site)
    assert state == "failed"
    assert [i for i, s in enumerate(rows) if s == "fail"] == [2, 3]
    report = cli_verify(site)
    assert [i for i, e in enumerate(report["events"]) if not e["ok"]] == [2, 3]
