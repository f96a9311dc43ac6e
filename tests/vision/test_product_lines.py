"""The product-line matcher (pure): which validated line an item's free-text registration names."""

from __future__ import annotations

import pytest

from authenticator.vision.product_lines import (
    KNOWN_LINES,
    DeclaredLine,
    ProductLine,
    category_of,
    line_key,
    match_line,
    words,
)

AF1, AJ1, BIRKIN = KNOWN_LINES


def key(category: str, brand: str, model: str) -> str | None:
    found = match_line(DeclaredLine(category, brand, model), KNOWN_LINES)
    return None if found is None else found.key


@pytest.mark.parametrize(
    ("category", "brand", "model"),
    [
        ("sneaker", "Nike", "Air Force 1"),
        ("Sneaker", "NIKE", "air force 1"),
        ("sneakers", "nike", "Air Force 1 Low '07"),
        ("sneaker", "Nike", "Air Force 1 '07 LV8"),
        ("shoes", "Nike", "Air-Force-1 Mid"),
        ("sneaker", "Nike", "AirForce1"),
        ("sneaker", "Nike", "AF1 Shadow"),
        ("sneaker", "Nike", "Nike Air Force 1 Low"),  # the brand written again in the model
        ("sneaker", "Nike Air Force 1", ""),  # the whole name in the brand (as the dev manifest)
        ("sneaker", "Ｎｉｋｅ", "Ａｉｒ Ｆｏｒｃｅ １"),  # full-width characters
    ],
)
def test_air_force_1_written_many_ways(category: str, brand: str, model: str) -> None:
    assert key(category, brand, model) == "sneaker/nike/air-force-1"


@pytest.mark.parametrize(
    ("brand", "model"),
    [
        ("Nike", "Air Jordan 1 Retro High OG"),
        ("Jordan", "Air Jordan 1 Mid"),
        ("Jordan", "1 Retro"),  # brand alias + "Jordan 1" read across the fields
        ("Air Jordan", "1 High"),
        ("Nike", "AJ1 Chicago"),
    ],
)
def test_air_jordan_1(brand: str, model: str) -> None:
    assert key("sneaker", brand, model) == "sneaker/nike/air-jordan-1"


@pytest.mark.parametrize(
    ("category", "brand", "model"),
    [
        ("sneaker", "Nike", "Air Force 10"),  # another number is another line
        ("sneaker", "Nike", "Air Jordan 11"),
        ("sneaker", "Nike", "Air Jordan 13 Retro"),
        ("sneaker", "Nike", "Air Max 1"),
        ("sneaker", "Nike", "1"),
        ("sneaker", "Nike", "Dunk Low"),
        ("sneaker", "Adidas", "Air Force 1"),  # the brand must be the line's
        ("sneaker", "", "Air Force 1"),
        ("bag", "Nike", "Air Force 1"),  # the category must be the line's
        ("sneaker", "Nike", ""),
        ("sneaker", "Nike", "Force"),
        ("sneaker", "Nike", "Air"),
    ],
)
def test_other_lines_do_not_match(category: str, brand: str, model: str) -> None:
    assert key(category, brand, model) is None


def test_accents_and_case_in_brand() -> None:
    for brand in ("Hermès", "HERMES", "hermès", "Hermes"):
        assert key("bag", brand, "Birkin 30 Himalaya") == "bag/hermes/birkin"
    assert key("handbag", "Hermes", "Birkin") == "bag/hermes/birkin"
    assert key("bag", "Hermes", "Kelly") is None
    assert key("bag", "Hermes", "Birkins") is None  # a whole word, not a prefix of one


def test_longest_line_wins() -> None:
    mid = ProductLine(category="sneaker", brand="Nike", model="Air Jordan 1 Mid")
    found = match_line(DeclaredLine("sneaker", "Nike", "Air Jordan 1 Mid SE"), [AJ1, mid])
    assert found is mid
    found = match_line(DeclaredLine("sneaker", "Nike", "Air Jordan 1 High"), [AJ1, mid])
    assert found is AJ1


def test_words_keys_and_categories() -> None:
    assert words("Air Force 1 Low '07") == ["air", "force", "1", "low", "07"]
    assert words("AF1") == ["af", "1"]
    assert line_key("Sneakers", "Nike", "Air Force 1") == "sneaker/nike/air-force-1"
    assert BIRKIN.key == "bag/hermes/birkin"
    assert category_of("Watches") == "watch"
    assert category_of("car") is None
