"""``authenticator assess [--category C --brand B --model M] PHOTO... [--json] [--heatmaps DIR]``:
a verdict from photos, offline.

With ``--category``, ``--brand`` and ``--model`` (what the item is sold as) the verdict uses that
product line's validated operating point, as the API does for a registered item; a line without one
is ``inconclusive`` (``product_line_not_validated``). Without them, the card's global pair.

Exit status 0 for any decision (authentic, counterfeit, inconclusive); 2 when no photo could
be decoded (or only part of a product line is given), 1 when the model cannot be loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from authenticator.config import Settings
from authenticator.errors import AuthenticatorError, ImageError
from authenticator.vision.product_lines import DeclaredLine
from authenticator.vision.reasons import set_aside
from authenticator.vision.service import Assessment, Assessor, PhotoInput


def assess(
    photos: Annotated[list[Path], typer.Argument(help="Photos of one item (JPEG, PNG, WebP, HEIC).", exists=True)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full assessment as JSON.")] = False,
    heatmaps: Annotated[
        Path | None, typer.Option("--heatmaps", help="Write an occlusion heat map PNG per scored photo here.")
    ] = None,
    category: Annotated[str | None, typer.Option("--category", help="What the item is: sneaker, bag or watch.")] = None,
    brand: Annotated[str | None, typer.Option("--brand", help="The item's brand, e.g. Nike.")] = None,
    model: Annotated[str | None, typer.Option("--model", help='The model line, e.g. "Air Force 1 Low \'07".')] = None,
) -> None:
    """Assess photos of one item and print the decision (with --category/--brand/--model: as that product line)."""
    given = [v for v in (category, brand, model) if v is not None]
    if given and len(given) != 3:
        typer.echo("error: give --category, --brand and --model together (the item's product line)", err=True)
        raise typer.Exit(2)
    line = (
        _declared(category, brand, model) if category is not None and brand is not None and model is not None else None
    )
    if heatmaps is not None and heatmaps.exists() and not heatmaps.is_dir():
        typer.echo(f"error: --heatmaps {heatmaps}: not a folder", err=True)
        raise typer.Exit(2)
    settings = Settings()
    try:
        assessor = Assessor.from_settings(settings)
        result = assessor.assess(
            [PhotoInput(filename=str(p), data=p.read_bytes()) for p in photos],
            heatmaps=heatmaps is not None,
            line=line,
        )
    except ImageError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    except AuthenticatorError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    written: dict[str, str] = {}
    if heatmaps is not None:
        heatmaps.mkdir(parents=True, exist_ok=True)
        for i, photo in enumerate(result.photos):
            png = result.heatmaps.get(photo.sha256)
            if png is not None:
                out = heatmaps / f"{i:02d}-{Path(photo.file).stem}.heatmap.png"
                out.write_bytes(png)
                written[photo.file] = str(out)
    if as_json:
        doc = result.model_dump(mode="json")
        if written:
            for p in doc["photos"]:
                p["heatmap"] = written.get(p["file"])
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(_summary(result, written))


def _declared(category: str, brand: str, model: str) -> DeclaredLine:
    """The product line as ``POST /v1/items`` takes it: the API's own rules (its ItemCreate), so
    what the API refuses with 422 (a category it does not know, a blank brand) is refused here."""
    from pydantic import ValidationError

    from api.schemas import ItemCreate  # the item's contract: one rule for the API and the command line

    try:
        item = ItemCreate.model_validate({"category": category, "brand": brand, "model": model})
    except ValidationError as exc:
        said = "; ".join(f"--{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        typer.echo(f"error: {said}", err=True)
        raise typer.Exit(2) from None
    return DeclaredLine(item.category, item.brand, item.model)


def _summary(a: Assessment, written: dict[str, str]) -> str:
    prob = "n/a" if a.probability_authentic is None else f"{a.probability_authentic:.3f}"
    t = a.thresholds
    lines = [
        f"decision: {a.decision}   P(authentic) = {prob}   category: {a.category or 'none'}",
        f"model: {a.model.name} {a.model.version} sha256:{a.model.sha256[:16]}...   "
        f"thresholds: authentic > {t.authentic_above:.3f}, counterfeit < {t.counterfeit_below:.3f}",
    ]
    if a.product_line is not None and a.product_line.declared is not None:
        d = a.product_line.declared
        used = {"line": "its own operating point", "global": "the global pair", "none": "no verdict"}
        lines.append(
            f"product line: {d['brand']} {d['model']} ({d['category']}) -> "
            f"{a.product_line.line or 'no line of this model'}: {used[a.product_line.operating_point]}"
        )
    lines += [f"  - {r.code}: {r.message}" for r in a.reasons]
    for p in a.photos:
        aside = set_aside([r.code for r in p.reasons])  # left out of the verdict: no score to show
        pp = "  -  " if p.probability_authentic is None or aside else f"{p.probability_authentic:.3f}"
        note = "; ".join(r.code for r in p.reasons) or "ok"
        lines.append(f"  {pp}  {p.category or '-':8s} {note:28s} {p.file}")
        if p.file in written:
            lines.append(f"         heat map: {written[p.file]}")
    return "\n".join(lines)
