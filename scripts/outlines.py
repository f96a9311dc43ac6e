"""Write the upload page's outline drawings: api/static/outlines/<category>-<view>.svg.

    .venv/bin/python scripts/outlines.py

One simple line drawing per view of every capture guide (authenticator/vision/capture_guides.py):
the item's silhouette, and for a detail or close-up a dashed circle on the place to photograph
with a magnifier. Stroke only, ``currentColor``-free (the files are shown as images), no script,
no external reference; a test checks every view has one.
"""

from __future__ import annotations

from pathlib import Path

from authenticator.vision.capture_guides import GUIDES

OUT = Path(__file__).resolve().parent.parent / "api" / "static" / "outlines"
INK = "#1a1a1a"
MARK = "#0b4f8a"

BAG = (
    '<path d="M14 34h52l-5 38H19z"/>'
    '<path d="M28 34v-6a12 12 0 0 1 24 0v6"/>'
    '<path d="M14 46h52"/><rect x="35" y="44" width="10" height="7" rx="1"/>'
)
BAG_BACK = (
    '<path d="M14 34h52l-5 38H19z"/><path d="M28 34v-6a12 12 0 0 1 24 0v6"/>'
    '<path d="M30 52h20" stroke-dasharray="2 3"/>'
)
BAG_BASE = (
    '<rect x="12" y="30" width="56" height="26" rx="4"/><circle cx="18" cy="36" r="2"/>'
    '<circle cx="62" cy="36" r="2"/><circle cx="18" cy="50" r="2"/><circle cx="62" cy="50" r="2"/>'
)
BAG_OPEN = '<path d="M14 40h52l-5 32H19z"/><path d="M14 40l8-12h36l8 12"/><path d="M24 48h32v14H24z"/>'
WATCH = (
    '<rect x="32" y="6" width="16" height="18" rx="2"/><rect x="32" y="56" width="16" height="18" rx="2"/>'
    '<circle cx="40" cy="40" r="17"/><circle cx="40" cy="40" r="13"/><path d="M40 40V31M40 40l6 4"/>'
    '<rect x="57" y="37" width="4" height="6" rx="1"/>'
)
WATCH_BACK = (
    '<rect x="32" y="6" width="16" height="18" rx="2"/><rect x="32" y="56" width="16" height="18" rx="2"/>'
    '<circle cx="40" cy="40" r="17"/><circle cx="40" cy="40" r="11"/>'
    '<path d="M34 38h12M34 42h12" stroke-dasharray="2 2"/>'
)
WATCH_SIDE = (
    '<rect x="16" y="32" width="44" height="14" rx="5"/><rect x="60" y="35" width="6" height="8" rx="1"/>'
    '<path d="M10 36h6M10 42h6M60 30v-4"/>'
)
CLASP = (
    '<rect x="14" y="30" width="52" height="20" rx="3"/><path d="M14 40h52"/>'
    '<path d="M30 34h20M30 46h20" stroke-dasharray="2 2"/>'
)
PAPERS = (
    '<rect x="10" y="28" width="36" height="30" rx="2"/><path d="M10 36h36"/>'
    '<rect x="44" y="20" width="26" height="36" rx="1"/><path d="M48 28h18M48 33h18M48 38h12"/>'
)
SHOE = (
    '<path d="M8 56c0-10 2-20 8-26l10 2 10 8c10 6 22 8 32 10 4 1 5 4 5 6v4H8z"/>'
    '<path d="M8 60h67"/><path d="M26 40l4-4M31 44l4-4M36 47l4-4"/>'
)
SHOE_BACK = '<path d="M20 22c-4 10-4 30 0 44h12c4-14 4-34 0-44z"/><path d="M48 22c-4 10-4 30 0 44h12c4-14 4-34 0-44z"/>'
SOLE = (
    '<path d="M40 8c12 0 16 12 14 26-1 8 4 16 4 24 0 10-8 14-18 14s-18-4-18-14c0-8 5-16 4-24C24 20 28 8 40 8z"/>'
    '<path d="M30 30h20M28 50h24" stroke-dasharray="3 3"/>'
)
TAG = '<rect x="18" y="22" width="44" height="36" rx="2"/><path d="M24 30h32M24 36h32M24 42h24M24 48h28"/>'
INSOLE = (
    '<path d="M40 8c10 0 13 10 12 22-1 8 3 16 3 24 0 10-7 16-15 16s-15-6-15-16c0-8 4-16 3-24C27 18 30 8 40 8z"/>'
    '<path d="M34 24h12"/>'
)
BOX = (
    '<path d="M10 30l30-12 30 12v28l-30 12-30-12z"/><path d="M10 30l30 12 30-12M40 42v28"/>'
    '<rect x="46" y="44" width="16" height="10" transform="skewY(-22) translate(0 24)"/>'
)
TOES = '<path d="M14 62c0-16 4-30 12-30s12 14 12 30z"/><path d="M42 62c0-16 4-30 12-30s12 14 12 30z"/>'

#: view -> (silhouette, marked place (cx, cy, r) or None)
VIEWS: dict[tuple[str, str], tuple[str, tuple[int, int, int] | None]] = {
    ("bag", "front"): (BAG, None),
    ("bag", "back"): (BAG_BACK, None),
    ("bag", "base"): (BAG_BASE, None),
    ("bag", "logo"): (BAG, (40, 58, 9)),
    ("bag", "heat_stamp"): (BAG_OPEN, (40, 55, 10)),
    ("bag", "serial"): (BAG_OPEN, (52, 58, 7)),
    ("bag", "hardware"): (BAG, (40, 47, 8)),
    ("bag", "stitching"): (BAG, (22, 60, 8)),
    ("bag", "interior"): (BAG_OPEN, None),
    ("bag", "handles"): (BAG, (30, 32, 7)),
    ("bag", "accessories"): (PAPERS, None),
    ("watch", "dial"): (WATCH, (40, 40, 15)),
    ("watch", "caseback"): (WATCH_BACK, (40, 40, 15)),
    ("watch", "case_side"): (WATCH_SIDE, (62, 39, 8)),
    ("watch", "clasp"): (CLASP, (40, 40, 12)),
    ("watch", "lugs"): (WATCH, (40, 59, 7)),
    ("watch", "whole"): (WATCH, None),
    ("watch", "bezel"): (WATCH, (26, 28, 7)),
    ("watch", "movement"): (WATCH_BACK, (40, 40, 10)),
    ("watch", "bracelet"): (WATCH, (40, 68, 7)),
    ("watch", "papers"): (PAPERS, None),
    ("sneaker", "outer_side"): (SHOE, None),
    ("sneaker", "inner_side"): (SHOE.replace("M26 40l4-4M31 44l4-4M36 47l4-4", "M40 48h14"), None),
    ("sneaker", "heels"): (SHOE_BACK, None),
    ("sneaker", "sole"): (SOLE, None),
    ("sneaker", "size_tag"): (TAG, (40, 40, 16)),
    ("sneaker", "insole"): (INSOLE, (40, 24, 8)),
    ("sneaker", "box_label"): (BOX, (54, 52, 10)),
    ("sneaker", "toe_box"): (TOES, None),
    ("sneaker", "stitching"): (SHOE, (50, 50, 7)),
    ("sneaker", "under_insole"): (INSOLE, (40, 50, 9)),
    ("sneaker", "tongue"): (SHOE, (24, 34, 7)),
}


def svg(silhouette: str, mark: tuple[int, int, int] | None) -> str:
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 80 80" width="80" height="80">',
        f'<g fill="none" stroke="{INK}" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">',
        silhouette,
        "</g>",
    ]
    if mark is not None:
        cx, cy, r = mark
        hx, hy = cx + round(r * 0.7), cy + round(r * 0.7)
        parts += [
            f'<g fill="none" stroke="{MARK}" stroke-width="2.5" stroke-linecap="round">',
            f'<circle cx="{cx}" cy="{cy}" r="{r}" stroke-dasharray="4 3"/>',
            f'<path d="M{hx} {hy}l{min(10, 78 - hx)} {min(10, 78 - hy)}"/>',
            "</g>",
        ]
    parts.append("</svg>\n")
    return "".join(parts)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for category, guide in GUIDES.items():
        for v in guide.views:
            silhouette, mark = VIEWS[(category, v.id)]
            (OUT / f"{category}-{v.id}.svg").write_text(svg(silhouette, mark))
    print(f"wrote {sum(len(g.views) for g in GUIDES.values())} outlines to {OUT}")


if __name__ == "__main__":
    main()
