"""The pages in Simplified Chinese and English, and the upload page's slots (issue 14, points 4
and 5), in a real headless Chromium against a live server.

- The buyer's trace page, the listing page and the upload page are served in the language of
  ``Accept-Language`` (or ``?lang=``), with a visible switch; the trace page's check in the browser
  reads the same in both: "complete and untampered" or, for a tampered trace, the same failed
  events with the verifier's reasons in the page's language.
- The upload page walks a seller through the slots of the item's category: one slot per view with
  an outline drawing and the instruction, a camera input on phones, per-slot retake advice from the
  quality gate before anything is recorded; the verdict lists the views still missing and the
  evidence per view. A watch goes to a lab, in words a seller understands.

The server, the browser and the helpers are ``tests/web/browser_site.py``'s; screenshots go where
that module's go (``UPDATE_SCREENSHOTS=1``: ``docs/screenshots``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageFilter

from api.app import create_app
from authenticator.config import Settings
from authenticator.store.keys import create_key
from authenticator.vision.capture_guides import GUIDES
from tests.live_server import serving_in_thread
from tests.web.browser_site import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    Site,
    Tab,
    TamperingApp,
    _bearer,
    assert_fits,
    open_trace,
    real_photos,
    shoot,
    tamper_entry,
    write_model_that_knows,
)

pytestmark = pytest.mark.browser

WATCHES = Path(__file__).resolve().parents[3] / "shared" / "data" / "watches"
WATCH_PHOTOS = sorted((WATCHES / "ashiii2121-watch" / "counterfeit").iterdir())[:3]
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


# --- the buyer's pages in both languages ---------------------------------------------------------


def test_trace_page_follows_accept_language_and_the_switch(site: Site, browser: Any) -> None:
    context = browser.new_context(viewport=PHONE, extra_http_headers=ZH)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(site.url(f"/t/{site.item_id}"))
        page.wait_for_selector("body[data-verification='verified']", state="attached", timeout=30_000)
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.inner_text("#standing-heading") == "关于此物品我们知道什么？"
        assert page.inner_text("#record-heading") == "这份记录可信吗？"
        assert page.inner_text("#verdict-text") == "这份记录完整且未被篡改"
        assert "你的浏览器已将该物品的全部" in page.inner_text("#verdict-detail")
        # every event's check reads in Chinese, the descriptions too
        reasons = page.eval_on_selector_all("#timeline .reason", "els => els.map(e => e.textContent)")
        assert reasons and all("字节与叶哈希一致" in r for r in reasons), reasons
        assert "已登记：" in page.inner_text("#timeline")
        assert page.locator(".languages .lang-current").inner_text() == "简体中文"
        shoot(page, "trace-zh")
        # the switch: the same page in English, and back
        page.click("#lang-en")
        page.wait_for_selector("body[data-verification='verified']", state="attached", timeout=30_000)
        assert page.get_attribute("html", "lang") == "en"
        assert page.inner_text("#verdict-text") == "This history is complete and untampered"
        assert page.url.endswith("?lang=en")
        page.click("#lang-zh-CN")
        page.wait_for_selector("body[data-verification='verified']", state="attached", timeout=30_000)
        assert page.inner_text("#verdict-text") == "这份记录完整且未被篡改"
        assert errors == []
    finally:
        context.close()


def test_a_tampered_trace_reads_the_same_in_both_languages(site: Site, tab: Tab, tampered: Any) -> None:
    tampered(tamper_entry(2))
    english = open_trace(tab, site)
    tab.page.goto(site.url(f"/t/{site.item_id}?lang=zh-CN"))
    tab.page.wait_for_selector("body[data-verification]", state="attached", timeout=30_000)
    rows = tab.page.eval_on_selector_all(
        "#timeline li.event",
        "rows => rows.map(r => ({state: r.dataset.state, reason: r.querySelector('.reason').textContent}))",
    )
    assert english.state == tab.page.evaluate("document.body.dataset.verification") == "failed"
    assert [r["state"] for r in rows] == [e["state"] for e in english.events]
    failed = [r["reason"] for r in rows if r["state"] == "fail"]
    assert any("叶哈希与记录字节不符" in r for r in failed), failed
    assert any("哈希链" in r for r in failed), failed
    assert tab.page.inner_text("#verdict-text") == "未通过核验：这份记录对不上"
    assert "项检查未通过" in tab.page.inner_text("#verdict-detail")
    assert "请勿信赖" in tab.page.inner_text("#standing")
    shoot(tab.page, "trace-tampered-zh")


def test_listing_page_in_chinese(site: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(site.url(f"/l/{site.listing_id}?lang=zh-CN"))
    assert page.get_attribute("html", "lang") == "zh-CN"
    text = page.inner_text("main")
    assert "查看关于此物品的已知信息" in text and "挂牌方" in text
    assert page.inner_text("#badge-label") in ("鉴定机构认证", "AI 照片鉴别为正品", "无法判定", "警告")
    # the language chosen with the switch follows the link to the trace page
    assert page.get_attribute("#trace-link", "href").endswith("?lang=zh-CN")
    page.goto(site.url("/t/itm_doesnotexist?lang=zh-CN"))
    assert "日志中没有物品 itm_doesnotexist" in page.inner_text("main")


def test_capture_guide_api_answers_in_chinese(site: Site) -> None:
    zh = httpx.get(site.url("/v1/capture-guides/watch"), headers=ZH).json()
    assert zh["lang"] == "zh-CN" and zh["required"][0]["name"] == "表盘"
    assert "每块手表都需要由鉴定机构检验实物" in zh["note"]
    en = httpx.get(site.url("/v1/capture-guides/watch?lang=en"), headers=ZH).json()
    assert en["lang"] == "en" and en["required"][0]["name"] == "Dial"
    assert zh["required"][0]["outline"] == en["required"][0]["outline"] == "/static/outlines/watch-dial.svg"


# --- the upload page's slots ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A live server whose model recognises bags, sneakers and watches (validates bags and sneakers)."""
    tmp = tmp_path_factory.mktemp("slots")
    write_model_that_knows(
        tmp / "weights",
        [(p, "bag") for p in real_photos("alauzon13-birkin/authentic", 2)]
        + [(p, "sneaker") for p in real_photos("zhengwu123-aj1/authentic", 2)]
        + [(p, "watch") for p in WATCH_PHOTOS],
    )
    app = create_app(Settings(data_dir=tmp / "data", weights_dir=tmp / "weights", database_url=None))
    with serving_in_thread(TamperingApp(app)) as base:
        s = Site(base=base, wrapper=None, app=app, tmp=tmp)  # type: ignore[arg-type]
        with httpx.Client(base_url=s.base, timeout=60) as http:
            admin = create_key(app.state.ctx.engine, "admin", "ops").api_key
            r = http.post("/v1/keys", json={"role": "platform", "name": "Acme Resale"}, headers=_bearer(admin))
            assert r.status_code == 201, r.text
            s.platform = r.json()["api_key"]
        yield s


def _blurred(source: Path, folder: Path, name: str) -> Path:
    out = folder / name
    Image.open(source).convert("RGB").filter(ImageFilter.GaussianBlur(8)).save(out, "JPEG", quality=92)
    return out


def _log_size(site: Site) -> int:
    return int(httpx.get(site.url("/v1/log/checkpoint")).text.split("\n")[1])


def _slot_state(page: Any, view: str, state: str) -> None:
    page.wait_for_selector(f"#slot-{view}[data-state='{state}']", timeout=60_000)


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_upload_page_walks_a_seller_through_the_watch_slots(
    shop: Site, tab: Tab, tmp_path: Path, size: dict[str, int]
) -> None:
    page = tab.page
    page.set_viewport_size(size)
    page.goto(shop.url("/assess"))
    page.fill("#api-key", shop.platform)
    page.select_option("#category", "watch")
    required = [v.id for v in GUIDES["watch"].required]
    slots = page.locator("#slot-list > li.slot")
    assert [slots.nth(i).get_attribute("data-view") for i in range(slots.count())] == required
    dial = page.locator("#slot-dial")
    assert dial.locator(".slot-name").inner_text() == "Dial"
    assert dial.locator(".slot-instruction").inner_text().startswith("The dial straight on")
    assert "2.5x the whole-item sharpness" in dial.locator(".slot-gate").inner_text()
    assert page.get_attribute("#slot-dial-camera", "capture") == "environment"
    assert page.get_attribute("#slot-dial-camera", "accept") == "image/*"
    outline = dial.locator("img.outline")
    assert outline.evaluate("i => i.complete && i.naturalWidth > 0") and outline.get_attribute("alt")
    # a watch goes to a lab: the page says so before anything is sent
    assert "Watches cannot be judged from photos yet" in page.inner_text("#guide-note")
    assert page.is_visible("#guide-note")
    size_before = _log_size(shop)

    # A blurred dial: checked at once, with retake advice for that slot; nothing recorded.
    page.set_input_files("#slot-dial-file", str(_blurred(WATCH_PHOTOS[0], tmp_path, "dial.jpg")))
    _slot_state(page, "dial", "retake")
    status = page.inner_text("#slot-dial-status")
    assert "Retake this photo." in status and "The photo is blurred" in status
    assert "It should show: The dial straight on" in status
    # The whole watch, sharp: usable.
    page.set_input_files("#slot-whole-camera", str(WATCH_PHOTOS[1]))
    _slot_state(page, "whole", "ok")
    _slot_state(page, "dial", "retake")
    # a good photo: a watch is not judged from photos, which no retake changes
    assert page.inner_text("#slot-whole-status").startswith("✓ Good photo. Watches cannot be judged from photos yet")
    missing = page.inner_text("#missing-views")
    assert missing.startswith("Still missing:") and "Caseback" in missing and "Dial" not in missing
    assert _log_size(shop) == size_before
    checks = page.locator("#preview-photos > li")
    assert [checks.nth(i).get_attribute("data-view") for i in range(checks.count())] == ["dial", "whole"]
    assert "View: Dial" in checks.nth(0).inner_text()
    assert_fits(page, f"/assess with slots at {size['width']}px")
    if size == PHONE:
        shoot(page, "assess-slots")

    # Record: the verdict lists the views still missing and the evidence per view.
    page.fill("#brand", "Patek Philippe")
    page.fill("#model", "Nautilus 5711")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=90_000)
    assert page.get_attribute("#decision", "data-decision") == "inconclusive"
    reasons = page.inner_text("#reasons")
    assert "Watches cannot be judged from photos yet" in reasons
    assert "not look like a bag, watch or sneaker" not in reasons and "unlike the photos" not in reasons
    result_missing = page.inner_text("#result-missing")
    assert "Views not photographed" in result_missing and "Caseback" in result_missing
    results = page.locator("#result-photos > li")
    assert [results.nth(i).get_attribute("data-view") for i in range(results.count())] == ["dial", "whole"]
    assert "View: Whole watch" in results.nth(1).inner_text()
    assert "Next step: a lab inspection" in page.inner_text("#next-step")
    recorded = httpx.get(shop.url(f"/v1/assessments/{page.text_content('#assessment-id')}")).json()
    assert [p["view"] for p in recorded["photos"]] == ["dial", "whole"]
    assert "caseback" in [v["id"] for v in recorded["missing_views"]]
    assert tab.console_errors == []
    assert_fits(page, f"/assess verdict at {size['width']}px")
    if size == PHONE:
        shoot(page, "assess-slots-verdict")


def test_the_upload_page_in_chinese(shop: Site, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(viewport=PHONE, extra_http_headers=ZH)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(shop.url("/assess"))
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.inner_text("h1") == "凭照片获取鉴别结论"
        page.fill("#api-key", shop.platform)
        page.select_option("#category", "bag")
        assert page.inner_text("#slot-front .slot-name") == "正面"
        assert page.inner_text("#slot-front label.button >> nth=0") == "拍照"
        assert "需要辨认文字" in page.inner_text("#slot-heat_stamp .slot-gate")
        birkin = real_photos("alauzon13-birkin/authentic", 2)
        page.set_input_files("#slot-front-file", str(birkin[0]))
        page.set_input_files("#slot-heat_stamp-file", str(_blurred(birkin[1], tmp_path, "stamp.jpg")))
        _slot_state(page, "front", "ok")
        _slot_state(page, "heat_stamp", "retake")
        status = page.inner_text("#slot-heat_stamp-status")
        assert "请重拍这张照片。" in status and "照片模糊" in status and "应拍到：包内的压印或标签" in status
        assert page.inner_text("#missing-views").startswith("仍缺少：")
        assert "如果现在记录这些照片" in page.inner_text("#preview-verdict")
        shoot(page, "assess-slots-zh")
        assert errors == []
    finally:
        context.close()


def test_slots_follow_the_category_and_other_photos_still_work(shop: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(shop.url("/assess"))
    page.fill("#api-key", shop.platform)
    for category in ("bag", "watch", "sneaker"):
        page.select_option("#category", category)
        views = page.locator("#slot-list > li.slot, #optional-slot-list > li.slot")
        assert [views.nth(i).get_attribute("data-view") for i in range(views.count())] == [
            v.id for v in GUIDES[category].views
        ]
    assert page.is_hidden("#guide-note")  # sneakers get verdicts
    # a photo without a slot is sent as before: no views, no missing views
    page.set_input_files("#photos", str(real_photos("zhengwu123-aj1/authentic", 1)[0]))
    page.wait_for_selector("body[data-preview='done']", state="attached", timeout=60_000)
    assert page.inner_text("#missing-views") == ""
    assert page.locator("#preview-photos > li").first.get_attribute("data-view") == "unspecified"
    assert SCREENSHOTS.exists() or True
