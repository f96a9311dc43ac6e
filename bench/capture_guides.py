"""docs/capture-guides.md: the capture guides and what each view's quality gate passes (not a test).

    .venv/bin/python bench/capture_guides.py

Writes the views of every category (authenticator/vision/capture_guides.py) and, for each
framing's limits, the share of the real development photos (``../shared/data/real`` and
``../shared/data/watches``) that pass the gate's resolution and sharpness checks. No photo is
labelled with its view, so this says how strict each framing is, not how often sellers pass.
"""

from __future__ import annotations

import csv

import numpy as np

from authenticator.config import REPO_ROOT, Settings
from authenticator.vision.capture_guides import FRAMING_GATES, GUIDES, gate_thresholds
from authenticator.vision.decode import DecodeLimits, decode_image, model_decode_size
from authenticator.vision.quality import measure_quality

SHARED = REPO_ROOT.parent / "shared" / "data"


def measurements() -> dict[str, list[tuple[int, float]]]:
    """(short side, sharpness) of every development photo, per source."""
    limits = DecodeLimits(max_bytes=200 * 1024 * 1024, max_megapixels=80.0, min_short_side=32)
    out: dict[str, list[tuple[int, float]]] = {}
    for folder in ("real", "watches"):
        root = SHARED / folder
        for r in csv.DictReader((root / "manifest.csv").open()):
            d = decode_image((root / r["path"]).read_bytes(), limits, reduce_to=model_decode_size(448))
            short = min(d.source_width or d.width, d.source_height or d.height)
            m = measure_quality(d.rgb, d.alpha, source_short_side=short)
            out.setdefault(r["path"].split("/")[0], []).append((m.short_side, m.sharpness))
    return out


def main() -> None:
    base = Settings().quality_thresholds
    lines = [
        "# Capture guides",
        "",
        "Produced by `bench/capture_guides.py` from `authenticator/vision/capture_guides.py` (served at "
        "`GET /v1/capture-guides/{category}`). The views were written in our own words after reading what "
        "photo-authentication services ask sellers for (sources in the module's docstring). Send each photo's "
        "view in the `views` form field of an assessment; a verdict lists the required views that are missing.",
        "",
        "## Declaring views",
        "",
        "An assessment (`POST /v1/items/{id}/assessments`, or `POST /v1/assessments/preview` with a `category` "
        "field for an item not registered yet) takes one `views` form field per photo, in the order of the "
        "photos: a view id of the item category's guide, or `unspecified`. Photos without one are `unspecified`; "
        "an upload that declares no view at all is assessed and recorded exactly as before. A view the guide "
        "does not know, or more views than photos, is refused (422) with the guide's view ids. When views are "
        "declared: each photo is held to its view's quality limits (below) and its retake advice starts with "
        "what the view should show; the `assessment.recorded` entry names each photo's view (`per_photo[].view`, "
        "an optional field: older entries and uploads without views do not have it) and the required views no "
        "photo was declared as (`missing_views`, with the reason `missing_views`, whose message names each "
        "view and what its photo should show). Missing views do not change the decision: the model's operating "
        "points were measured on photos without views. The lab-certified export (`python -m training "
        "export-dataset`) writes each photo's declared view in its `view` column.",
        "",
        "A photo's view is taken as declared: predicting it from the pixels (and flagging a mismatch) needs "
        "photos labelled with their views, which no development data set has; the export collects them from "
        "lab-certified items so that a view classifier and per-view scores in the card can follow.",
        "",
        "## What the quality gate asks of each framing",
        "",
        "| framing | sharpness at least | short side at least | in words |",
        "|---|---|---|---|",
    ]
    for framing, gate in FRAMING_GATES.items():
        t = gate_thresholds(base, framing)
        lines.append(f"| {framing} | {t.min_sharpness:g} | {t.min_short_side} px | {gate.checks} |")
    data = measurements()
    lines += [
        "",
        "Exposure, contrast, glare and framing limits are the calibrated ones for every view "
        "(`docs/vision-thresholds.md`). No development photo is labelled with its view, so the factors are set "
        "by hand, not fitted. How strict they are: the share of each source's photos that pass a framing's "
        "resolution and sharpness limits.",
        "",
        "| source | photos | median short side | " + " | ".join(FRAMING_GATES) + " |",
        "|---|---|---|" + "---|" * len(FRAMING_GATES),
    ]
    for source, ms in sorted(data.items()):
        short = np.array([m[0] for m in ms])
        sharp = np.array([m[1] for m in ms])
        cells = []
        for framing in FRAMING_GATES:
            t = gate_thresholds(base, framing)
            cells.append(f"{np.mean((short >= t.min_short_side) & (sharp >= t.min_sharpness)):.1%}")
        lines.append(f"| {source} | {len(ms)} | {int(np.median(short))} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "waizwafiq-sneakers' photos are 224 px thumbnails: fine for the shape of a shoe, too small to read a "
        "size tag, which is what the close-up limits refuse. Phone photos (the WhatsApp watch photos, 960 px) "
        "pass every framing.",
        "",
    ]
    for category, guide in GUIDES.items():
        lines += [f"## {category}", "", "| view | name | required | framing | instruction |", "|---|---|---|---|---|"]
        for v in guide.views:
            lines.append(
                f"| `{v.id}` | {v.name} | {'yes' if v.required else 'optional'} | {v.framing} | {v.instruction} |"
            )
        lines.append("")
    text = "\n".join(lines)
    (REPO_ROOT / "docs" / "capture-guides.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
