"""Product lines: which validated line (category + brand + model line) an item was registered as.

Pure functions, no I/O. A model card lists the lines it has an operating point for
(:class:`ProductLine`, with the brand's and the model line's other names); an item is registered
with free text (``category``, ``brand``, ``model``). :func:`match_line` says which line that text
names, if any:

- case-, accent- and punctuation-insensitive: ``HERMÈS`` is ``Hermes``, ``air-force 1`` is
  ``Air Force 1``;
- tolerant of what follows the line's name: ``Air Force 1 Low '07`` and ``Air Force 1 '07 LV8``
  are Air Force 1, but ``Air Force 10`` is not, nor is ``Air Jordan 11`` Air Jordan 1 (names are
  compared on whole words and whole numbers, spaces not counting: ``AirForce1`` = ``Air Force 1``);
- the brand may be written in the model field too (``brand=Nike, model=Nike Air Force 1``) or the
  whole name in the brand field (``brand=Nike Air Force 1``), as manifests and sellers do.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

_WORD = re.compile(r"[a-z]+|[0-9]+")

#: Other names of a category, as sellers write them.
CATEGORY_NAMES: dict[str, tuple[str, ...]] = {
    "sneaker": ("sneaker", "sneakers", "shoe", "shoes", "trainer", "trainers"),
    "bag": ("bag", "bags", "handbag", "handbags", "purse"),
    "watch": ("watch", "watches", "wristwatch"),
}


class ProductLine(BaseModel):
    """A model line of a brand in a category, with the other names sellers use for it."""

    category: str
    brand: str
    model: str
    brand_aliases: list[str] = Field(default_factory=list)
    model_aliases: list[str] = Field(default_factory=list)

    @property
    def key(self) -> str:
        """``sneaker/nike/air-force-1``: stable, ASCII, one per line."""
        return line_key(self.category, self.brand, self.model)

    @property
    def label(self) -> str:
        return f"{self.brand} {self.model} ({self.category})"


def fold(text: str) -> str:
    """Lower case without accents: ``Hermès`` -> ``hermes``, ``ＡＦ１`` -> ``af1``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The words and numbers of ``text`` (letters and digits split apart: ``AF1`` -> af, 1)."""
    return _WORD.findall(fold(text))


def line_key(category: str, brand: str, model: str) -> str:
    return "/".join("-".join(words(part)) for part in (category_of(category) or category, brand, model))


def category_of(text: str) -> str | None:
    """The category a seller's word names (``Sneakers`` -> sneaker), or None."""
    w = "".join(words(text))
    for category, names in CATEGORY_NAMES.items():
        if w in names:
            return category
    return None


def _prefix(tokens: Sequence[str], name: str) -> int | None:
    """How many of ``tokens`` spell ``name`` (spaces not counting) ending on a word boundary; None
    when they do not start with it."""
    target = "".join(words(name))
    if not target:
        return None
    built = ""
    for i, t in enumerate(tokens):
        built += t
        if built == target:
            return i + 1
        if not target.startswith(built):
            return None
    return None


def _after_names(tokens: Sequence[str], names: Iterable[str]) -> list[Sequence[str]]:
    """What follows each of ``names`` that ``tokens`` start with."""
    out = []
    for n in names:
        used = _prefix(tokens, n)
        if used is not None:
            out.append(tokens[used:])
    return out


def names_line(line: ProductLine, brand: str, model: str) -> bool:
    """Whether ``brand`` + ``model`` (free text) name ``line``, whatever follows its model name."""
    tokens = words(brand) + words(model)
    brands = [line.brand, *line.brand_aliases]
    models = [line.model, *line.model_aliases]
    after_brand = _after_names(tokens, brands)
    if not after_brand:
        return False  # the brand must be named
    # the model name follows the brand, or repeats it ("Nike" + "Nike Air Force 1"), or the brand's
    # name is part of it ("Jordan" + "Air Jordan 1")
    candidates = [tokens, *after_brand, *(r for rest in after_brand for r in _after_names(rest, brands))]
    return any(_after_names(c, models) for c in candidates)


@dataclass(frozen=True)
class DeclaredLine:
    """What an item was registered as (free text)."""

    category: str
    brand: str
    model: str

    @property
    def category_key(self) -> str | None:
        return category_of(self.category)

    def describe(self) -> str:
        return " ".join(p for p in (self.brand, self.model) if p).strip() + f" ({self.category})"


def match_line(declared: DeclaredLine, lines: Iterable[ProductLine]) -> ProductLine | None:
    """The line of ``lines`` that the declaration names (same category, brand and model line), or
    None. When several match (a line and a longer one, say "Air Jordan 1" and "Air Jordan 1 Mid")
    the one with the longest model name wins."""
    category = declared.category_key
    found = [
        line
        for line in lines
        if category is not None
        and category_of(line.category) == category
        and names_line(line, declared.brand, declared.model)
    ]
    if not found:
        return None
    return max(found, key=lambda line: len("".join(words(line.model))))


#: Lines the development data holds and their common other names. Training labels its photos
#: with these (``training/product_lines.py``); the card carries those it fitted.
KNOWN_LINES: tuple[ProductLine, ...] = (
    ProductLine(
        category="sneaker",
        brand="Nike",
        model="Air Force 1",
        model_aliases=["AF1", "AF 1", "Air Force One"],
    ),
    ProductLine(
        category="sneaker",
        brand="Nike",
        model="Air Jordan 1",
        brand_aliases=["Jordan", "Jordan Brand", "Air Jordan", "Nike Jordan"],
        model_aliases=["AJ1", "AJ 1", "Jordan 1", "Air Jordan One"],
    ),
    ProductLine(category="bag", brand="Hermès", model="Birkin", brand_aliases=["Hermes Paris"]),
)
