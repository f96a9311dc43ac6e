"""Simplified Chinese (issue 14, point 5): the message catalogue, the choice of language, and the
pages rendered in it (the Chromium tests are in tests/web/test_web_slots_and_languages.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from authenticator.config import Settings
from authenticator.i18n import (
    LOCALE_DIR,
    LOCALES,
    Translator,
    extracted,
    fill,
    negotiate,
    script_messages,
    translations,
    untranslated,
)
from authenticator.vision.capture_guides import GUIDES
from authenticator.vision.reasons import MESSAGES, NOT_VALIDATED_MESSAGES, RETAKE
from tests.vision_tiny_model import write_tiny_model

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@pytest.mark.parametrize(
    ("accept", "lang", "want"),
    [
        (None, None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh-CN"),
        ("zh", None, "zh-CN"),
        ("zh-Hans-CN", None, "zh-CN"),
        ("zh_CN", None, "zh-CN"),
        ("en-GB,en;q=0.9", None, "en"),
        ("fr-FR,fr;q=0.9", None, "en"),
        ("fr;q=1, zh;q=0.5", None, "zh-CN"),
        ("en;q=0.4, zh-CN;q=0.8", None, "zh-CN"),
        ("zh-CN;q=0", None, "en"),
        ("zh-TW", None, "en"),  # Traditional Chinese: not this catalogue
        ("zh-CN", "en", "en"),  # the switch wins
        (None, "zh-CN", "zh-CN"),
        ("zh-CN", "xx", "zh-CN"),  # an unknown ?lang= is ignored
        ("*", None, "en"),
        ("garbage;;q=abc,,", None, "en"),
    ],
)
def test_the_language_is_the_switch_then_accept_language(accept: str | None, lang: str | None, want: str) -> None:
    assert negotiate(accept, lang) == want


def test_translator_fills_placeholders_and_falls_back_to_english() -> None:
    zh = Translator("zh-CN")
    assert zh("Dial") == "表盘"
    assert zh("Score {score}.", score="87%") == "评分 87%。"
    assert zh("a message nobody wrote") == "a message nobody wrote"
    assert Translator("en")("Score {score}.", score="87%") == "Score 87%."
    assert Translator("xx").locale == "en"
    assert fill("{a} and {b}", {"a": 1}) == "1 and {b}"
    assert zh.catalogue(["Dial", "not in the catalogue"]) == {"Dial": "表盘"}


def test_every_message_has_a_chinese_translation_with_the_same_placeholders() -> None:
    assert untranslated("zh-CN") == []
    t = translations("zh-CN")
    messages = {m for m, _f, _l in extracted()}
    # the core's tables are part of it: reasons, retake hints, every capture guide
    assert set(MESSAGES.values()) | set(NOT_VALIDATED_MESSAGES.values()) | set(RETAKE.values()) <= messages
    assert {v.instruction for g in GUIDES.values() for v in g.views} <= messages
    for m in messages:
        zh = t.gettext(m)
        assert set(PLACEHOLDER.findall(zh)) == set(PLACEHOLDER.findall(m)), (m, zh)
    # the verifier in the browser and the upload page say their words through the catalogue too
    scripts = script_messages()
    assert "leaf hash does not match the entry bytes" in scripts
    assert "This history is complete and untampered" in scripts
    assert "Retake this photo." in scripts
    assert all(t.gettext(m) != m or not re.search("[A-Za-z]{2}", m) or m == "{n} MB" for m in scripts)


def test_the_catalogue_is_up_to_date_with_the_sources() -> None:
    """``python -m authenticator.i18n extract`` leaves nothing to add: every marked message is in the .po."""
    from babel.messages.pofile import read_po

    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    have = {m.id for m in catalog if m.id}
    assert {m for m, _f, _l in extracted()} <= have
    assert LOCALES == ("en", "zh-CN")


def test_scripts_use_only_the_embedded_catalogue() -> None:
    """The pages' scripts translate with t() from the catalogue the page embeds (no fetch, no CDN)."""
    for name in ("assess.js", "trace-page.js", "trace-verify.js"):
        text = (REPO / "api" / "static" / name).read_text()
        assert '"i18n"' in text or "TraceVerify.t" in text, name
        assert "fetch(\"/static" not in text and "http" + "://" not in text, name


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    weights = tmp_path_factory.mktemp("weights")
    write_tiny_model(weights)
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), weights_dir=weights, database_url=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_the_upload_page_in_both_languages(client: TestClient) -> None:
    en = client.get("/assess")
    assert en.status_code == 200 and en.headers["content-language"] == "en"
    assert "Accept-Language" in en.headers["vary"]
    assert '<html lang="en">' in en.text and "Get a verdict from photos" in en.text
    assert 'href="/assess?lang=zh-CN"' in en.text and "简体中文" in en.text
    zh = client.get("/assess", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert zh.headers["content-language"] == "zh-CN" and '<html lang="zh-CN">' in zh.text
    assert "凭照片获取鉴别结论" in zh.text and "记录鉴别结论" in zh.text
    assert "Get a verdict from photos" not in zh.text
    # the page carries the guides and the reasons in its language, and the scripts' catalogue
    words, catalogue = _json(zh.text, "page-words"), _json(zh.text, "i18n")
    assert words["guides"]["watch"]["required"][0]["name"] == "表盘"
    assert words["messages"]["blurred"].startswith("照片模糊") and words["messages_en"]["blurred"].startswith("The")
    assert catalogue["Retake this photo."] == "请重拍这张照片。"
    switched = client.get("/assess?lang=en", headers={"Accept-Language": "zh-CN"})
    assert switched.headers["content-language"] == "en" and _json(switched.text, "i18n") == {}
    assert _json(switched.text, "page-words")["guides"]["watch"]["required"][0]["name"] == "Dial"


def _json(html: str, script_id: str) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" id="{script_id}">(.*?)</script>', html, re.S)
    assert found is not None, script_id
    value: dict[str, Any] = json.loads(found.group(1))
    return value


def test_a_missing_page_in_chinese(client: TestClient) -> None:
    r = client.get("/t/itm_nothere?lang=zh-CN")
    assert r.status_code == 404 and "日志中没有物品 itm_nothere。" in r.text and "未找到" in r.text


def test_every_view_has_a_plain_outline_drawing() -> None:
    folder = REPO / "api" / "static" / "outlines"
    for category, guide in GUIDES.items():
        for v in guide.views:
            svg = (folder / f"{category}-{v.id}.svg").read_text()
            assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and svg.rstrip().endswith("</svg>")
            assert "<script" not in svg and "href" not in svg and "on" not in re.sub(r"[^<]*<", "<", svg).split()
