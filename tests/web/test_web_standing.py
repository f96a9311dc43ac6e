"""What buyers and sellers see (issue 15), in a real headless Chromium against a live server.

The buyer's page answers two questions in this order and never mixes them: *what do we know
about this item?* (the most serious current fact first: a revoked certificate, a re-certified
item whose revocation is history, a lab's counterfeit finding, a photo check only) and *can I
trust this record?* (checked in the browser: "complete and untampered"). Names, not ids; no
page wider than the screen from 320 to 1,440 px with long names. The seller's upload page
checks photos before anything is recorded, refuses to record photos that cannot be used, keeps
the item it registered, and ends every verdict with a next step.

The server, the browser and the helpers are ``tests/web/browser_site.py``'s; the data is made
here through the API and the lab CLI (``lab sign``, ``lab revoke``). Screenshots go where that
module's go (``UPDATE_SCREENSHOTS=1``: ``docs/screenshots``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from authenticator.cli import app as cli_app
from authenticator.store.keys import create_key
from tests.web.browser_site import (
    A11Y_PROBLEMS,
    SCREENSHOTS,
    UNTAMPERED,
    Site,
    Tab,
    _bearer,
    assert_fits,
    real_photos,
    shoot,
)

pytestmark = pytest.mark.browser

BIRKIN = "alauzon13-birkin/authentic"
AJ1 = "zhengwu123-aj1/authentic"
LONG_LAB = "Laboratoire Genevois d'Expertise Horlogère, Maroquinière et Sneakers de Collection Sàrl"
LONG_ACCREDITATION = "ISO/IEC 17025:2017, Swiss Accreditation Service SAS, accreditation number STS-0123-EXPERTISE"
LONG_BRAND = "Hermès-Sellier-Faubourg-Saint-Honoré-Édition-Numérotée-Pour-Collectionneurs"
LONG_MODEL = "Birkin-Retourne-35-Togo-Gold-Hardware-Special-Order-Horseshoe-Stamp-" + "X" * 60
WIDTHS = (320, 390, 768, 1024, 1440)
ID_PATTERN = re.compile(r"\b(plt|lab|itm|crt|asm|lst|adm)_[0-9a-f]{8,}")


@dataclass
class World:
    site: Site
    admin: str
    lab_ids: dict[str, str] = field(default_factory=dict)
    lab_keys: dict[str, str] = field(default_factory=dict)
    lab_files: dict[str, Path] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)
    listing: str = ""


def _cli(*args: str) -> str:
    out = CliRunner().invoke(cli_app, list(args))
    assert out.exit_code == 0, out.output
    return out.stdout


def _register_lab(w: World, http: httpx.Client, name: str, accreditation: str, short: str) -> None:
    key_file = w.site.tmp / f"{short}.key"
    public_key = json.loads(_cli("lab", "keygen", "--out", str(key_file)))["public_key"]
    r = http.post(
        "/v1/labs",
        json={"name": name, "accreditation": accreditation, "public_key": public_key},
        headers=_bearer(w.admin),
    )
    assert r.status_code == 201, r.text
    w.lab_ids[short], w.lab_keys[short], w.lab_files[short] = r.json()["id"], r.json()["api_key"], key_file


def _certify(w: World, item: str, lab: str, outcome: str, date: str) -> str:
    answer = _cli(
        "lab", "sign", item, "--outcome", outcome, "--method", "inspection in person: stitching, stamps, UV",
        "--key", str(w.lab_files[lab]), "--lab-id", w.lab_ids[lab], "--date", date,
        "--url", w.site.base, "--api-key", w.lab_keys[lab],
    )  # fmt: skip
    return str(json.loads(answer)["id"])


def _revoke(w: World, certificate: str, lab: str, reason: str) -> None:
    answer = _cli("lab", "revoke", certificate, "--reason", reason, "--url", w.site.base, "--api-key", w.lab_keys[lab])
    assert json.loads(answer)["status"] == "revoked"


def _item(http: httpx.Client, w: World, category: str, brand: str, model: str) -> str:
    r = http.post(
        "/v1/items", json={"category": category, "brand": brand, "model": model}, headers=_bearer(w.site.platform)
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _assess(http: httpx.Client, w: World, item: str, photos: list[Path]) -> dict[str, Any]:
    r = http.post(
        f"/v1/items/{item}/assessments",
        files=[("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos],
        headers=_bearer(w.site.platform),
    )
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


@pytest.fixture(scope="module")
def world(site: Site) -> Iterator[World]:
    w = World(site=site, admin=create_key(site.app.state.ctx.engine, "admin", "ops").api_key)
    with httpx.Client(base_url=site.base, timeout=120) as http:
        _register_lab(w, http, LONG_LAB, LONG_ACCREDITATION, "geneva")
        _register_lab(w, http, "Milano Authentication Srl", "ISO/IEC 17020 type A, Accredia 0042", "milano")
        birkin, aj1 = real_photos(BIRKIN, 2), real_photos(AJ1, 2)

        # A lab certifies, then revokes: a warning until a new certificate replaces it.
        w.items["revoked"] = item = _item(http, w, "bag", "Hermès", "Kelly 28")
        _assess(http, w, item, birkin)
        _revoke(w, _certify(w, item, "geneva", "authentic", "2026-11-18"), "geneva", "The date stamp does not match")
        # The same, then a corrected certificate: certified, the revocation is history.
        w.items["recertified"] = item = _item(http, w, "bag", "Hermès", "Birkin 35")
        _revoke(w, _certify(w, item, "geneva", "authentic", "2026-11-18"), "geneva", "Typo in the report")
        _certify(w, item, "geneva", "authentic", "2026-11-19")
        # A lab finds the item counterfeit.
        w.items["counterfeit"] = item = _item(http, w, "sneaker", "Nike", "Air Jordan 1 High")
        _assess(http, w, item, aj1)
        _certify(w, item, "milano", "counterfeit", "2026-11-20")
        # Only a photo check.
        w.items["photo_only"] = item = _item(http, w, "sneaker", "Nike", "Air Jordan 1 Low")
        _assess(http, w, item, aj1)
        # Long names everywhere.
        w.items["long"] = item = _item(http, w, "bag", LONG_BRAND, LONG_MODEL)
        _certify(w, item, "geneva", "authentic", "2026-11-21")
        r = http.post(
            "/v1/listings",
            json={"item_id": item, "title": LONG_BRAND + " " + LONG_MODEL, "price": "123456.78", "currency": "CHF"},
            headers=_bearer(site.platform),
        )
        assert r.status_code == 201, r.text
        w.listing = r.json()["id"]
    yield w


# --- reading the buyer's page ---------------------------------------------------------------------


@dataclass
class BuyerPage:
    facts: list[dict[str, str]]
    history: list[dict[str, str]]
    standing_first: bool
    verification: str
    record_text: str
    visible: str
    next_step: str | None


def open_buyer_page(tab: Tab, site: Site, item: str) -> BuyerPage:
    page = tab.page
    page.goto(site.url(f"/t/{item}"))
    page.wait_for_selector("body[data-verification]", state="attached", timeout=30_000)
    facts = page.eval_on_selector_all(
        "#standing .fact",
        """els => els.map(e => ({kind: e.dataset.kind, level: e.className.match(/fact-(\\w+)/)[1],
            title: e.querySelector('.fact-title').textContent,
            detail: e.querySelector('.fact-detail').textContent}))""",
    )
    history = page.eval_on_selector_all(
        "#standing .history-note", "els => els.map(e => ({kind: e.dataset.kind, text: e.textContent}))"
    )
    first = page.evaluate(
        """() => !!(document.getElementById('standing').compareDocumentPosition(document.getElementById('record'))
            & Node.DOCUMENT_POSITION_FOLLOWING)"""
    )
    next_step = page.evaluate(
        "() => { const n = document.getElementById('next-step'); return n ? n.innerText : null; }"
    )
    return BuyerPage(
        facts=facts,
        history=history,
        standing_first=first,
        verification=page.evaluate("document.body.dataset.verification"),
        record_text=page.inner_text("#record"),
        visible=page.inner_text("main"),
        next_step=next_step,
    )


def assert_plain_words(view: BuyerPage) -> None:
    """The two questions in order, the record's answer never 'verified', names not ids."""
    assert view.standing_first
    assert view.verification == "verified"
    assert UNTAMPERED in view.record_text and "Verified" not in view.record_text
    assert "What do we know about this item?" in view.visible and "Can I trust this record?" in view.visible
    words = re.sub(r"https?://\S+", "", view.visible)  # the page's own address (QR caption) may hold the id
    assert ID_PATTERN.search(words) is None, ID_PATTERN.search(words)
    assert "log entry #" not in view.visible and "probability authentic" not in view.visible
    assert "by platform" not in view.visible and "by Acme Resale" in view.visible


def test_revoked_certificate_is_the_first_thing_a_buyer_reads(world: World, tab: Tab) -> None:
    view = open_buyer_page(tab, world.site, world.items["revoked"])
    assert_plain_words(view)
    first = view.facts[0]
    assert (first["kind"], first["level"]) == ("revoked", "warning")
    assert first["title"] == "A lab withdrew its certificate for this item"
    assert LONG_LAB in first["detail"] and "“The date stamp does not match”" in first["detail"]
    assert "No lab certificate is in force for this item now." in first["detail"]
    assert [f["kind"] for f in view.facts] == ["revoked", "photo_" + view.facts[1]["kind"].split("_", 1)[1]]
    assert "inspected" not in view.facts[1]["detail"]  # a lab did inspect it: the photo fact must not deny it
    assert view.next_step is not None and "Milano Authentication Srl" in view.next_step
    assert tab.console_errors == []
    shoot(tab.page, "trace-revoked")


def test_recertified_item_is_certified_and_the_revocation_is_history(world: World, tab: Tab) -> None:
    item = world.items["recertified"]
    view = open_buyer_page(tab, world.site, item)
    assert_plain_words(view)
    assert [(f["kind"], f["level"]) for f in view.facts] == [("lab_certified", "lab_certified")]
    assert view.facts[0]["title"] == f"Certified authentic by {LONG_LAB}"
    assert LONG_ACCREDITATION in view.facts[0]["detail"] and "19 Nov 2026" in view.facts[0]["detail"]
    assert [h["kind"] for h in view.history] == ["revocation_replaced"]
    assert "Typo in the report" in view.history[0]["text"]
    assert "Warning" not in view.visible and tab.page.locator(".fact-warning").count() == 0
    assert httpx.get(world.site.url(f"/v1/items/{item}")).json()["badge"]["level"] == "lab_certified"
    assert view.next_step is None
    shoot(tab.page, "trace-recertified")


def test_a_labs_counterfeit_finding_names_the_lab_and_its_accreditation(world: World, tab: Tab) -> None:
    view = open_buyer_page(tab, world.site, world.items["counterfeit"])
    assert_plain_words(view)
    first = view.facts[0]
    assert (first["kind"], first["level"]) == ("lab_counterfeit", "warning")
    assert first["title"] == "A lab found this item counterfeit"
    assert "Milano Authentication Srl (ISO/IEC 17020 type A, Accredia 0042)" in first["detail"]
    assert "20 Nov 2026" in first["detail"]
    shoot(tab.page, "trace-counterfeit-by-lab")


def test_photo_check_only_says_so_and_points_to_the_labs(world: World, tab: Tab) -> None:
    view = open_buyer_page(tab, world.site, world.items["photo_only"])
    assert_plain_words(view)
    first = view.facts[0]
    assert first["kind"] in ("photo_authentic", "photo_inconclusive", "photo_counterfeit")
    assert "No lab certificate is in force for this item." in first["detail"]
    if first["kind"] == "photo_authentic":
        assert first["title"] == "Photo check only: no sign of a counterfeit" and first["level"] == "ai_verified"
    assert view.next_step is not None
    for lab, accreditation in ((LONG_LAB, LONG_ACCREDITATION), ("Milano Authentication Srl", "Accredia 0042")):
        assert lab in view.next_step and accreditation in view.next_step
    assert tab.page.evaluate(A11Y_PROBLEMS) == []
    shoot(tab.page, "trace-photo-check-only")


def test_technical_details_are_one_click_away(world: World, tab: Tab) -> None:
    page = tab.page
    open_buyer_page(tab, world.site, world.items["photo_only"])
    first_event = page.locator("#timeline li.event").first
    assert not first_event.locator(".tech-lines").is_visible()
    first_event.locator("details.tech summary").click()
    assert first_event.locator(".tech-lines").is_visible()
    assert re.search(r"log entry #\d+", first_event.inner_text())
    assert "plt_" in first_event.inner_text()  # the platform's id, for whoever wants it
    page.locator("#technical > summary").click()
    assert page.locator("#log-key").is_visible() and page.locator("#cli-hint").is_visible()


# --- every width from a small phone to a desktop --------------------------------------------------


def test_pages_fit_every_width_with_long_names(world: World, tab: Tab) -> None:
    page = tab.page
    for path in (f"/t/{world.items['long']}", f"/l/{world.listing}", f"/t/{world.items['revoked']}"):
        page.goto(world.site.url(path))
        page.wait_for_load_state("networkidle")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            assert_fits(page, f"{path} at {width}px")
    page.set_viewport_size({"width": 320, "height": 900})
    page.goto(world.site.url(f"/t/{world.items['long']}"))
    page.wait_for_selector("body[data-verification='verified']", state="attached", timeout=30_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "trace-long-names-320.png"), full_page=True)


# --- the seller's upload page --------------------------------------------------------------------


def _blurred_copy(source: Path, folder: Path, name: str) -> Path:
    out = folder / name
    Image.open(source).convert("RGB").filter(ImageFilter.GaussianBlur(8)).save(out, "JPEG", quality=92)
    return out


def _log_size(site: Site) -> int:
    return int(httpx.get(site.url("/v1/log/checkpoint")).text.split("\n")[1])


def test_photos_are_checked_before_anything_is_recorded(world: World, tab: Tab, tmp_path: Path) -> None:
    site, page = world.site, tab.page
    good = real_photos(BIRKIN, 2)
    blurred = _blurred_copy(good[0], tmp_path, "front-of-the-bag-taken-in-a-hurry.jpg")
    page.goto(site.url("/assess"))
    page.fill("#api-key", site.platform)
    page.fill("#brand", "Hermès")
    page.fill("#model", "Kelly 32")
    size = _log_size(site)

    # Only a blurred photo: checked at once, set aside with no score, and nothing can be recorded.
    page.set_input_files("#photos", str(blurred))
    page.wait_for_selector("body[data-preview]", state="attached", timeout=60_000)
    page.wait_for_selector("#preview-verdict[data-recordable='false']", timeout=60_000)
    photo = page.locator("#preview-photos > li").first
    assert photo.get_attribute("data-set-aside") == "true"
    assert "The photo is blurred" in photo.inner_text() and "A retake should show sharp edges" in photo.inner_text()
    assert "Score" not in page.inner_text("#preview") and "%" not in photo.inner_text()
    assert "front-of-the-bag-taken-in-a-hurry.jpg: The photo is blurred" in page.inner_text("#preview-verdict")
    shoot(page, "assess-preview-refused")
    page.click("#submit")
    page.wait_for_selector("#form-error:not([hidden])", timeout=60_000)
    assert page.inner_text("#form-error strong") == "Nothing to record"
    assert _log_size(site) == size  # no item registered, no assessment recorded
    assert page.evaluate("localStorage.getItem('authenticator.keptItem')") is None

    # Add two good photos: the check says what recording would give; still nothing recorded.
    page.set_input_files("#photos", [str(p) for p in good])
    page.wait_for_selector("#preview-verdict[data-recordable='true']", timeout=60_000)
    checks = page.locator("#preview-photos > li")
    assert [checks.nth(i).get_attribute("data-set-aside") for i in range(3)] == ["true", "false", "false"]
    assert "If you record these photos now:" in page.inner_text("#preview-verdict")
    assert _log_size(site) == size
    shoot(page, "assess-preview")

    # Record: one item, one assessment; the set-aside photo shows no score, and a next step follows.
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=90_000)
    assert _log_size(site) == size + 2  # item.registered + assessment.recorded
    results = page.locator("#result-photos > li")
    assert results.nth(0).get_attribute("data-set-aside") == "true"
    assert "Score" not in results.nth(0).inner_text() and "A retake should show" in results.nth(0).inner_text()
    assert "Score:" in results.nth(1).inner_text()
    assert page.inner_text("#next-step").strip()
    decision = page.get_attribute("#decision", "data-decision")
    if decision in ("inconclusive", "counterfeit"):
        assert LONG_LAB in page.inner_text("#lab-list") and LONG_ACCREDITATION in page.inner_text("#lab-list")
        assert "What to send: the item itself" in page.inner_text("#next-step")
    assert "null" not in page.inner_text("#next-step")
    assert tab.console_errors == []
    shoot(page, "assess-next-step")

    # The page keeps the item it registered: a retry in a new tab offers it instead of a new one.
    item = page.text_content("#result-item-id")
    second = page.context.new_page()
    second.goto(site.url("/assess"))
    assert second.is_visible("#kept-choice")
    assert "The item you registered here: Hermès Kelly 32 (bag), verdict recorded" in second.inner_text("#kept-choice")
    kept = json.loads(second.evaluate("localStorage.getItem('authenticator.keptItem')"))
    assert kept["id"] == item and kept["recorded"] is True
    second.close()


def test_a_failed_upload_is_retried_on_the_same_item(world: World, tab: Tab) -> None:
    """The item registered before a failed upload is offered first, and chosen, on the next visit."""
    site, page = world.site, tab.page
    page.route("**/v1/items/*/assessments?heatmaps=true", lambda route: route.abort("connectionreset"))
    page.goto(site.url("/assess"))
    page.fill("#api-key", site.platform)
    page.fill("#brand", "Goyard")
    page.fill("#model", "Saint Louis GM")
    page.set_input_files("#photos", [str(p) for p in real_photos(BIRKIN, 2)])
    page.wait_for_selector("#preview-verdict[data-recordable='true']", timeout=60_000)
    page.click("#submit")
    page.wait_for_selector("#form-error:not([hidden])", timeout=60_000)
    assert "The upload did not reach the service." in page.inner_text("#form-error")
    registered = json.loads(page.evaluate("localStorage.getItem('authenticator.keptItem')"))
    page.unroute("**/v1/items/*/assessments?heatmaps=true")
    retry = page.context.new_page()
    retry.goto(site.url("/assess"))
    assert retry.is_checked("input[name='item_mode'][value='kept']")
    assert "Goyard Saint Louis GM (bag), no verdict recorded yet" in retry.inner_text("#kept-choice")
    assert retry.is_hidden("#new-item")
    retry.fill("#api-key", site.platform)
    retry.set_input_files("#photos", [str(p) for p in real_photos(BIRKIN, 2)])
    retry.click("#submit")
    retry.wait_for_selector("#result:not([hidden])", timeout=90_000)
    assert retry.text_content("#result-item-id") == registered["id"]  # the same item, not a second one
    reasons = retry.inner_text("#reasons")
    assert "a common sign of a scam listing" not in reasons  # its own photos, sent again
    retry.close()


def test_a_counterfeit_verdict_gives_its_reasons_and_how_to_contest_it(world: World, tab: Tab) -> None:
    """The page's words for a counterfeit answer (the answer itself is shaped from a real one)."""
    site, page = world.site, tab.page
    real = _assess_directly(world)

    def counterfeit(route: Any) -> None:
        answer = dict(real, decision="counterfeit", probability_authentic=0.04, reasons=[])
        answer["photos"] = [dict(p, probability_authentic=s) for p, s in zip(real["photos"], (0.02, 0.09), strict=True)]
        route.fulfill(status=201, content_type="application/json", body=json.dumps(answer))

    page.route("**/v1/items/*/assessments?heatmaps=true", counterfeit)
    page.goto(site.url("/assess"))
    page.fill("#api-key", site.platform)
    page.fill("#brand", "Nike")
    page.fill("#model", "Dunk Low")
    page.set_input_files("#photos", [str(p) for p in real_photos(AJ1, 2)])
    page.click("#submit")
    # the page's own error, if it shows one, is the failure message (it failed once by timing out here)
    page.wait_for_selector("#result:not([hidden]), #form-error:not([hidden])", timeout=90_000)
    assert page.is_visible("#result"), page.inner_text("#form-error")
    text = page.inner_text("#next-step")
    assert "Why the model says counterfeit" in text
    assert "The score, 4%, is below 20%, under which the model calls an item counterfeit." in text
    assert re.search(r"Lowest-scoring photos: \S+ \(2%\), \S+ \(9%\)", text), text
    assert "How to contest it" in text
    assert "the certificate replaces this photo result on the item's badge and public page" in text
    assert LONG_LAB in page.inner_text("#lab-list") and "Milano Authentication Srl" in page.inner_text("#lab-list")
    shoot(page, "assess-counterfeit")


def _assess_directly(world: World) -> dict[str, Any]:
    with httpx.Client(base_url=world.site.base, timeout=120) as http:
        item = _item(http, world, "sneaker", "Nike", "Dunk Low")
        return _assess(http, world, item, real_photos(AJ1, 2))


def test_form_errors_name_the_fields_as_the_form_labels_them(world: World, tab: Tab) -> None:
    page = tab.page
    page.goto(world.site.url("/assess"))
    page.fill("#api-key", world.site.platform)
    page.set_input_files("#photos", [str(p) for p in real_photos(BIRKIN, 1)])
    page.click("#submit")  # no brand: said before anything is sent
    page.wait_for_selector("#form-error:not([hidden])")
    assert page.inner_text("#error-detail") == "Brand: enter a value."
    page.fill("#brand", "Chanel\u202e")  # a bidi override: refused by the API, named as the form names it
    page.fill("#model", "Classic Flap")
    page.click("#submit")
    page.wait_for_function(
        "() => document.getElementById('error-detail')?.textContent.startsWith('Brand: ') "
        "&& document.getElementById('error-detail').textContent !== 'Brand: enter a value.'"
    )
    detail = page.inner_text("#error-detail")
    assert "body." not in detail and detail.startswith("Brand: "), detail


def test_the_upload_page_fits_a_small_phone_with_long_file_names(world: World, tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    source = real_photos(AJ1, 1)[0]
    long_name = tmp_path / ("IMG_20261127_153012_HDR_portrait_mode_" + "very_long_file_name_" * 6 + ".jpg")
    shutil.copy(source, long_name)
    page.set_viewport_size({"width": 320, "height": 900})
    page.goto(world.site.url("/assess"))
    page.fill("#api-key", world.site.platform)
    page.fill("#brand", LONG_BRAND)
    page.fill("#model", "Air Jordan 1 Retro High OG")
    page.set_input_files("#photos", str(long_name))
    page.wait_for_selector("body[data-preview]", state="attached", timeout=60_000)
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=90_000)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"/assess at {width}px")
    page.set_viewport_size({"width": 320, "height": 900})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "assess-long-names-320.png"), full_page=True)
