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
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import free_port
from tests.web.browser_site import (
    A11Y_PROBLEMS,
    UNTAMPERED,
    VECTORS,
    Site,
    Tab,
    Tamper,
    _bearer,
    assert_agrees_with_cli,
    cli_verify,
    drop_event,
    open_trace,
    real_photos,
    shoot,
    swap_events,
    tamper_consistency,
    tamper_entry,
    tamper_proof,
    tamper_signature,
)

pytestmark = pytest.mark.browser


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
    port = free_port()
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
