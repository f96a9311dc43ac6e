"""The views an uploader declares for their photos, checked against the item's capture guide.

An assessment's ``views`` form field names each photo's view, in the order of the photos; a photo
without one is ``unspecified``, and an upload that declares no view at all is assessed as before
(no view in its entry, no ``missing_views``). Declared views must be views of the guide of the
item's category (:mod:`authenticator.vision.capture_guides`); each photo's framing sets what the
quality gate asks of it, and the required views no photo was declared as are listed in the
verdict (``missing_views``) with what each photo should show.

Predicting a photo's view from its pixels (and flagging a mismatch) needs photos labelled with
their views, which no development data set has: the lab-certified export carries the declared
views (``training/export_dataset.py``) so that such a model can be trained once certified items
with views exist. Until then the declared view is taken as given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from authenticator.contracts.assessments import ViewRef
from authenticator.errors import InvalidInput
from authenticator.vision.capture_guides import UNSPECIFIED, CaptureGuide, Framing, View, guide_for
from authenticator.vision.category import CATEGORIES, Category
from authenticator.vision.product_lines import category_of
from authenticator.vision.reasons import Reason, reason


@dataclass(frozen=True)
class DeclaredViews:
    """Each photo's view (``unspecified`` where none was given) and the guide they were checked against."""

    guide: CaptureGuide | None
    views: list[str]
    declared: bool  # whether the upload declared any view at all

    def framing(self, i: int) -> Framing:
        view = self.guide.view(self.views[i]) if self.guide is not None else None
        return view.framing if view is not None else "whole"

    def view_of(self, i: int) -> str | None:
        """Photo ``i``'s view as recorded (None when the upload declared none)."""
        return self.views[i] if self.declared else None

    def missing(self) -> list[View]:
        """Required views of the guide no photo was declared as (none when no view was declared)."""
        if not self.declared or self.guide is None:
            return []
        return self.guide.missing(self.views)


def guide_of_category(category_text: str | None) -> CaptureGuide | None:
    """The capture guide of an item registered as ``category_text`` (a seller's word: ``Sneakers``)."""
    if category_text is None:
        return None
    return guide_for(category_of(category_text) or category_text.strip().lower())


_CATEGORY_CHOICES = ", ".join(CATEGORIES[:-1]) + f" or {CATEGORIES[-1]}"


def category_sent(text: str | None) -> Category | None:
    """The ``category`` an upload names for an item not registered yet, or None when it names none.

    Exactly one of the ids ``POST /v1/items`` takes (``bag``, ``watch``, ``sneaker``: no other
    word, nor another case), so that a preview is checked against the guide the item will have;
    anything else is refused, not assessed as if no category had been sent."""
    if text is None:
        return None
    for category in CATEGORIES:
        if text == category:
            return category
    raise InvalidInput(
        f"unknown category {text!r}: 'category' is one of {_CATEGORY_CHOICES}, in lower case as items are registered",
        category=text,
    )


def declare_views(category_text: str | None, raw: Sequence[str | None], n_photos: int) -> DeclaredViews:
    """Check the declared views: at most one per photo, each a view of the category's guide (or
    ``unspecified``); raises :class:`InvalidInput` naming the views the guide knows."""
    if len(raw) > n_photos:
        raise InvalidInput(
            f"{len(raw)} views for {n_photos} photos: send one 'views' field per photo, in the order of the photos",
            views=len(raw),
            photos=n_photos,
        )
    views = [(v or "").strip() or UNSPECIFIED for v in raw]
    views += [UNSPECIFIED] * (n_photos - len(views))
    guide = guide_of_category(category_text)
    for v in views:
        if v == UNSPECIFIED:
            continue
        if guide is None and category_text is None:
            raise InvalidInput(
                f"views need the item's category: send 'category' ({_CATEGORY_CHOICES}) with the photos of an "
                "item not registered yet",
                view=v,
            )
        if guide is None:
            raise InvalidInput(
                f"there is no capture guide for the category {category_text!r}: its photos' views can only be "
                f"'{UNSPECIFIED}'",
                view=v,
            )
        if guide.view(v) is None:
            known = ", ".join(x.id for x in guide.views)
            raise InvalidInput(f"'{v}' is not a view of the {guide.category} capture guide; one of: {known}", view=v)
    return DeclaredViews(guide=guide, views=views, declared=any(v != UNSPECIFIED for v in views))


def view_refs(views: Sequence[View], translate: Callable[[str], str] = str) -> list[ViewRef]:
    """What the answers say of views: id, name and what the photo should show."""
    return [ViewRef(id=v.id, name=translate(v.name), instruction=translate(v.instruction)) for v in views]


def missing_views_reason(missing: Sequence[View], translate: Callable[[str], str] = str) -> Reason:
    """``missing_views``, naming each missing view and what its photo should show."""
    detail = "; ".join(f"{translate(v.name)}: {translate(v.instruction)}" for v in missing)
    return reason("missing_views", detail)


def recorded_missing(guide: CaptureGuide | None, ids: Sequence[str]) -> list[View]:
    """The views of a recorded ``missing_views`` list (ids the guide no longer knows are kept by id)."""
    out = []
    for view_id in ids:
        view = guide.view(view_id) if guide is not None else None
        out.append(view if view is not None else View(id=view_id, name=view_id, instruction="", framing="whole"))
    return out


def retake_for_view(guide: CaptureGuide | None, view_id: str | None, hint: str | None) -> str | None:
    """What a retake of a set-aside photo of ``view_id`` should show: the view's instruction, then the
    quality hint; None when no retake would help (a watch goes to a lab however it is photographed)."""
    view = guide.view(view_id) if guide is not None and view_id is not None else None
    if view is None or hint is None:
        return hint
    return f"{view.instruction[:-1]}; {hint}"
