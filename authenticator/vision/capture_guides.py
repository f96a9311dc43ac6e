"""Capture guides: which photos of an item carry the signal, and how sharp each must be.

Legit-check services do not take "some photos of the item": they ask for named views, because
counterfeits differ in the small places (a bag's heat stamp and date code, a watch's dial print,
caseback and the reference between the lugs, a sneaker's size tag, insole and box label). The
views below are written in our own words after reading what photo-authentication services and
authenticators ask sellers for (checked November 2026):

- bags: exterior front/back/base, the brand stamp, the interior heat stamp or label, the date code
  or serial tag, hardware engravings, stitching, handles (proauthenticators.com "submitting
  complete photos", preluve.com "how to check the authenticity of your designer bags",
  reluxefashion.com "luxury authentication", revenueberry.com "authenticate a designer handbag
  from a photo");
- watches: a straight-on dial, the caseback, the crown and case side, the clasp, the serial and
  reference between the lugs, the rehaut and bezel at a slight tilt, the movement through an
  exhibition back (weknowwatches.com "how to authenticate any watch", dnawatchesnyc.com "how to
  authenticate a watch", watchradar.space "why a five-angle scan", watchstalk.com fake-busters);
- sneakers: outer and inner side, heels, outsole, the size tag, the insole print and the
  stitching under it, the box label (litbuy.lat QC checklist, legitgrails photo requests,
  ahuaau.com authentication steps, sneaker legit-check guides on the box label and size tag).

Each view has a *framing* that sets what the quality gate asks of its photo
(:data:`FRAMING_GATES`): a whole-item shot keeps the calibrated limits; a detail (hardware,
stitching) needs 1.5x their sharpness and a 320 px short side; a close-up that must be *read* (a
stamp, a serial, a label) needs 2.5x their sharpness and a 400 px short side. No development photo
is labelled with its view, so these factors are set by hand, not fitted: on the real development
photos the close-up limits pass every WhatsApp watch photo, 99.9% of mrdeepakk-nike's and 96% of
zhengwu123-aj1's phone close-ups, but only about 4% of waizwafiq-sneakers' 224 px thumbnails (too
small to read a label); ``bench/capture_guides.py`` writes the figures to ``docs/capture-guides.md``.

Pure data and pure functions (no OpenCV): the API serves the guides, the services check declared
views against them, the assessor applies each view's gate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from authenticator.vision.quality_thresholds import QualityThresholds

Framing = Literal["whole", "detail", "close_up"]

#: The view of a photo whose uploader did not say (or for a category without a guide).
UNSPECIFIED = "unspecified"


@dataclass(frozen=True)
class FramingGate:
    """What the gate asks of a photo of one framing, relative to the calibrated limits."""

    sharpness_factor: float
    min_short_side: int | None
    checks: str

    def thresholds(self, base: QualityThresholds) -> QualityThresholds:
        """``base`` (the service's calibrated limits) made stricter for this framing, never looser."""
        short = base.min_short_side if self.min_short_side is None else max(base.min_short_side, self.min_short_side)
        return dataclasses.replace(base, min_sharpness=base.min_sharpness * self.sharpness_factor, min_short_side=short)


FRAMING_GATES: dict[Framing, FramingGate] = {
    "whole": FramingGate(
        1.0,
        None,
        "The whole item in frame and in focus: the calibrated limits for blur, exposure, glare, contrast and how "
        "much of the frame the item fills.",
    ),
    "detail": FramingGate(
        1.5,
        320,
        "A detail filling the frame: 1.5x the whole-item sharpness (stitch holes and engraving edges must be crisp) "
        "and at least 320 px on the short side; exposure and glare as for a whole item.",
    ),
    "close_up": FramingGate(
        2.5,
        400,
        "Text that must be read: 2.5x the whole-item sharpness and at least 400 px on the short side, so every "
        "character of a stamp, serial or label is legible; no glare on the text.",
    ),
}


@dataclass(frozen=True)
class View:
    """One photo a guide asks for."""

    id: str
    name: str
    instruction: str
    framing: Framing
    required: bool = True


@dataclass(frozen=True)
class CaptureGuide:
    category: str
    views: tuple[View, ...]

    @property
    def required(self) -> list[View]:
        return [v for v in self.views if v.required]

    @property
    def optional(self) -> list[View]:
        return [v for v in self.views if not v.required]

    def view(self, view_id: str) -> View | None:
        return next((v for v in self.views if v.id == view_id), None)

    def missing(self, declared: list[str]) -> list[View]:
        """Required views no photo was declared as, in the guide's order."""
        have = set(declared)
        return [v for v in self.required if v.id not in have]


def _v(id: str, name: str, instruction: str, framing: Framing, required: bool = True) -> View:
    return View(id=id, name=name, instruction=instruction, framing=framing, required=required)


GUIDES: dict[str, CaptureGuide] = {
    "bag": CaptureGuide(
        "bag",
        (
            _v("front", "Front", "The whole bag from the front, straight on, filling most of the frame.", "whole"),
            _v("back", "Back", "The whole bag from the back, straight on.", "whole"),
            _v("base", "Base", "The underside of the bag, with its corners and any feet.", "whole"),
            _v(
                "logo",
                "Brand stamp",
                "The brand name or logo on the outside, close enough to read every letter.",
                "close_up",
            ),
            _v(
                "heat_stamp",
                "Inside stamp",
                "The stamp or label inside the bag, straight on, every letter sharp.",
                "close_up",
            ),
            _v(
                "serial",
                "Date code or serial",
                "The date code, serial tag or chip label, every character readable.",
                "close_up",
            ),
            _v(
                "hardware",
                "Hardware",
                "A zip pull, clasp or lock close up, with its engraving facing the camera.",
                "detail",
            ),
            _v(
                "stitching",
                "Stitching",
                "A run of stitches along an edge or handle base, close up and square on.",
                "detail",
            ),
            _v("interior", "Interior", "The inside of the open bag: lining, pockets and seams.", "whole", False),
            _v(
                "handles",
                "Handles",
                "Where a handle or strap joins the bag, showing the anchor and stitches.",
                "detail",
                False,
            ),
            _v(
                "accessories",
                "Dust bag and cards",
                "The dust bag, box, cards or receipt that came with the bag.",
                "whole",
                False,
            ),
        ),
    ),
    "watch": CaptureGuide(
        "watch",
        (
            _v(
                "dial",
                "Dial",
                "The dial straight on, filling the frame, hands and all printing sharp, no glare.",
                "close_up",
            ),
            _v("caseback", "Caseback", "The back of the case straight on, every engraving readable.", "close_up"),
            _v("case_side", "Crown side", "The side of the case with the crown, level with the watch.", "detail"),
            _v("clasp", "Clasp", "The clasp or buckle opened flat, its logo and stamps facing the camera.", "detail"),
            _v(
                "lugs",
                "Between the lugs",
                "The serial or reference engraved between the lugs (bracelet off if needed).",
                "close_up",
            ),
            _v("whole", "Whole watch", "The whole watch laid flat, bracelet or strap included.", "whole"),
            _v(
                "bezel",
                "Bezel and inner ring",
                "The bezel and the inner ring of the dial at a slight tilt.",
                "detail",
                False,
            ),
            _v(
                "movement",
                "Movement",
                "The movement through a display caseback, if the watch has one.",
                "close_up",
                False,
            ),
            _v("bracelet", "Bracelet", "The bracelet's end links and any code stamped on them.", "detail", False),
            _v(
                "papers",
                "Box and papers",
                "The box, warranty card and papers that came with the watch.",
                "whole",
                False,
            ),
        ),
    ),
    "sneaker": CaptureGuide(
        "sneaker",
        (
            _v(
                "outer_side",
                "Outer side",
                "One shoe from the outer side, the whole shoe level with the camera.",
                "whole",
            ),
            _v("inner_side", "Inner side", "The same shoe from the inner side.", "whole"),
            _v("heels", "Heels", "Both heels from behind, level with them.", "whole"),
            _v("sole", "Outsole", "The whole outsole of one shoe, heel to toe.", "whole"),
            _v("size_tag", "Size tag", "The size label inside the shoe, every line and code readable.", "close_up"),
            _v("insole", "Insole", "The insole from above, its printed logo sharp.", "detail"),
            _v("box_label", "Box label", "The label on the shoe box, every line readable.", "close_up"),
            _v("toe_box", "Toe box", "Both shoes from the front, toes side by side.", "whole", False),
            _v("stitching", "Stitching", "The stitching of a panel close up, square on.", "detail", False),
            _v("under_insole", "Under the insole", "The stitching under the removed insole.", "detail", False),
            _v("tongue", "Tongue label", "The label on the front of the tongue, straight on.", "close_up", False),
        ),
    ),
}


def guide_for(category: str) -> CaptureGuide | None:
    return GUIDES.get(category)


def framing_of(category: str | None, view_id: str | None) -> Framing:
    """The framing of ``view_id`` in ``category``'s guide; a whole-item shot when unknown or unspecified."""
    if category is None or view_id is None:
        return "whole"
    guide = GUIDES.get(category)
    view = guide.view(view_id) if guide is not None else None
    return view.framing if view is not None else "whole"


def gate_thresholds(base: QualityThresholds, framing: Framing) -> QualityThresholds:
    """The limits the gate applies to a photo of ``framing``."""
    return FRAMING_GATES[framing].thresholds(base)
