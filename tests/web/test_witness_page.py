"""The trace page and the witnesses, in a real headless Chromium against a real uvicorn server.

The server witnesses its log with a real ``authenticator witness serve`` process. The page shows
the witness keys under "Technical details", checks the witnesses' cosignatures with WebCrypto
and says who witnessed the checkpoint; ``?min_witnesses=K`` makes at least K of them a
condition of "complete and untampered". A thin ASGI wrapper can strip or forge the cosignature
lines of the trace's checkpoint; the page's verdict must agree with ``trace verify`` with the
same policy. The browser's verifier also accepts the real cosignatures of public witnesses on a
staging CT checkpoint (the vectors of tests/ledger/test_cosignature.py).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from api.app import create_app
from authenticator.cli import app as cli_app
from authenticator.config import Settings
from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.ledger.cosignature import verify_cosignatures
from authenticator.store.keys import create_key
from tests.conftest import REPO_ROOT
from tests.ledger_samples import REAL_NOTE, REAL_WITNESSES
from tests.live_server import serving_in_thread
from tests.vision_tiny_model import write_tiny_model
from tests.web.browser_site import UNTAMPERED, TamperingApp
from tests.witness_support import WitnessServer, running_witness

pytestmark = pytest.mark.browser

ORIGIN = "authenticator.local/log"
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"  # git-ignored test artifacts

Rewrite = Callable[[str], str]


class CheckpointRewriter(TamperingApp):
    """Passes everything through; rewrites the ``checkpoint`` of trace answers with ``rewrite``."""

    @property
    def rewrite(self) -> Rewrite | None:
        return self._rewrite if self.tamper is not None else None

    @rewrite.setter
    def rewrite(self, fn: Rewrite | None) -> None:
        self._rewrite = fn
        self.tamper = None if fn is None else (lambda trace: trace.update(checkpoint=fn(trace["checkpoint"])))


def strip_cosignatures(note: str) -> str:
    text, _, sigs = note.partition("\n\n")
    return f"{text}\n\n{sigs.splitlines()[0]}\n"


def forge_cosignature(note: str) -> str:
    text, _, sigs = note.partition("\n\n")
    log_line, line = sigs.splitlines()[:2]
    dash, name, blob = line.split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[20] ^= 1
    return f"{text}\n\n{log_line}\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"


@dataclass
class Site:
    base: str
    wrapper: CheckpointRewriter
    witness: WitnessServer
    log_key: str
    item_id: str = ""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("witness-page")
    write_tiny_model(tmp / "weights")
    log_key = CheckpointSigner.load_or_create(tmp / "data" / "log.key", ORIGIN).verifier_key
    with running_witness(tmp / "witness", "witness.test/page", [log_key]) as witness:
        settings = Settings(
            data_dir=tmp / "data",
            weights_dir=tmp / "weights",
            database_url=None,
            witnesses=f"{witness.base} {witness.vkey}",
        )
        app = create_app(settings)
        wrapper = CheckpointRewriter(app)
        with serving_in_thread(wrapper) as base:
            s = Site(base, wrapper, witness, log_key)
            admin = create_key(app.state.ctx.engine, "admin", "ops").api_key
            with httpx.Client(base_url=s.base, timeout=60) as http:
                r = http.post(
                    "/v1/keys",
                    json={"role": "platform", "name": "Acme Resale"},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                platform = r.json()["api_key"]
                r = http.post(
                    "/v1/items",
                    json={"category": "bag", "brand": "Hermès", "model": "Birkin 30"},
                    headers={"Authorization": f"Bearer {platform}"},
                )
                assert r.status_code == 201, r.text
                s.item_id = r.json()["id"]
                deadline = time.monotonic() + 30
                while not verify_cosignatures(
                    http.get(f"/v1/items/{s.item_id}/trace").json()["checkpoint"], [witness.verifier]
                ):
                    assert time.monotonic() < deadline, "the trace's checkpoint was never cosigned"
                    time.sleep(0.05)
            yield s


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield p
        assert errors == []
    finally:
        site.wrapper.rewrite = None
        context.close()


def _open(page: Any, site: Site, query: str = "") -> dict[str, str]:
    page.goto(f"{site.base}/t/{site.item_id}{query}")
    page.wait_for_selector("body[data-verification]", state="attached", timeout=30_000)
    row: dict[str, str] = page.eval_on_selector(
        "#witness-check",
        "r => ({hidden: String(r.hidden), state: r.dataset.state, label: r.querySelector('.check-label').textContent,"
        " reason: r.querySelector('.reason').textContent})",
    )
    row["verdict"] = page.evaluate("document.body.dataset.verification")
    row["banner"] = page.inner_text("#verdict")
    return row


def _cli(site: Site, *policy: str) -> int:
    args = ["trace", "verify", f"{site.base}/v1/items/{site.item_id}/trace", "--key", site.log_key, *policy]
    return CliRunner().invoke(cli_app, args).exit_code


def test_the_page_says_who_witnessed_the_checkpoint(page: Any, site: Site) -> None:
    row = _open(page, site)
    assert row["verdict"] == "verified" and UNTAMPERED in row["banner"]
    assert row["hidden"] == "false" and row["state"] == "ok"
    assert row["reason"].startswith("Witnessed by witness.test/page (cosigned ")
    shown = page.eval_on_selector_all("#witness-keys code", "cs => cs.map(c => c.textContent.trim())")
    assert shown == [site.witness.vkey]
    page.evaluate("document.getElementById('technical').open = true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "trace-witnessed-phone.png"), full_page=True)
    # The same with a policy, in the page and in the terminal.
    assert _open(page, site, "?min_witnesses=1")["verdict"] == "verified"
    assert _cli(site, "--witness", site.witness.vkey, "--min-witnesses", "1") == 0


def test_no_cosignature_is_only_a_failure_under_a_policy(page: Any, site: Site) -> None:
    site.wrapper.rewrite = strip_cosignatures
    row = _open(page, site)
    assert row["verdict"] == "verified"  # the other checks do not depend on witnesses
    assert row["state"] == "unchecked" and "no witness has cosigned" in row["reason"]
    row = _open(page, site, "?min_witnesses=1")
    assert row["verdict"] == "failed" and row["state"] == "fail"
    assert "0 of the required 1 witnesses" in row["reason"]
    assert _cli(site, "--witness", site.witness.vkey, "--min-witnesses", "1") == 1
    assert _cli(site) == 0
    # A policy the page cannot read fails closed (it was read as no policy: "verified").
    for unreadable in ("abc", "-1", "1.5"):
        row = _open(page, site, f"?min_witnesses={unreadable}")
        assert row["verdict"] == "failed", unreadable
        assert "min_witnesses" in row["banner"], row["banner"]


def test_a_forged_cosignature_fails_the_page(page: Any, site: Site) -> None:
    site.wrapper.rewrite = forge_cosignature
    row = _open(page, site)
    assert row["verdict"] == "failed" and row["state"] == "fail"
    assert "the cosignature of witness witness.test/page does not verify" in row["reason"]
    assert page.evaluate("document.getElementById('technical').open")
    assert _cli(site, "--witness", site.witness.vkey) == 1


def test_the_browser_verifies_real_public_witness_cosignatures(page: Any, site: Site) -> None:
    page.goto(f"{site.base}/t/{site.item_id}")
    page.wait_for_selector("body[data-verification]", state="attached", timeout=30_000)
    found = page.evaluate("([note, keys]) => TraceVerify.verifyCosignatures(note, keys)", [REAL_NOTE, REAL_WITNESSES])
    assert [f["verifierKey"] for f in found] == REAL_WITNESSES
    assert {f["timestamp"] for f in found} == {0x6A122120}
    altered = REAL_NOTE.replace("\n1432088532\n", "\n1432088533\n")
    message = page.evaluate(
        "([note, keys]) => TraceVerify.verifyCosignatures(note, keys).then(() => 'accepted', e => e.message)",
        [altered, REAL_WITNESSES[:1]],
    )
    assert "does not verify" in message
