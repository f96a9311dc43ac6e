"""``python -m training model {dataset,train,evaluate}``: the training side of ``authenticator model``
(which runs these in a subprocess, so the service's own install never imports torch).

A wrong input (a file that is not there, a manifest without its columns, a folder without its
card) ends in one ``error:`` line and exit 2, as the ``authenticator`` command line does, since
that line is all a person running ``authenticator model`` sees; ``AUTHENTICATOR_TRACEBACK=1``
shows the traceback."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from training.paths import DEV_MANIFEST, portable

model_app = typer.Typer(help="The model lifecycle's training side (see authenticator model).", no_args_is_help=True)


def _refuse(message: str) -> NoReturn:
    """The CLI's usage error; imported when needed, so that a training run does not load the CLI."""
    from authenticator.cli._errors import refuse

    refuse(message)


@contextmanager
def _input_errors() -> Iterator[None]:
    """What a wrong file raises deep in the pipeline (missing, unreadable, not the right kind): one line."""
    from authenticator.cli._errors import describe
    from authenticator.errors import AuthenticatorError

    try:
        yield
    except (OSError, ValueError, KeyError, AuthenticatorError) as exc:
        if os.environ.get("AUTHENTICATOR_TRACEBACK") == "1":
            raise
        _refuse(describe(exc) if not isinstance(exc, KeyError) else f"missing field {exc}")


def _check_manifest(path: Path, option: str, *, photos: bool = True) -> None:
    """A manifest CSV with ``path`` and ``label`` columns (and, with ``photos``, at least one photo)."""
    if not path.is_file():
        _refuse(f"{option} {path}: " + ("not a file" if path.exists() else "no such file"))
    with _input_errors(), path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label"} - set(reader.fieldnames or [])
        if missing:
            _refuse(f"{option} {path} is not a manifest CSV: no {' or '.join(sorted(missing))} column")
        if photos and next(reader, None) is None:
            _refuse(f"{option} {path} lists no photos")


def _card_of(candidate: Path) -> Path:
    """The candidate's card: the file given, or the one ``*.card.json`` in the folder given."""
    if candidate.is_file():
        return candidate
    if not candidate.is_dir():
        _refuse(f"--candidate {candidate}: no such file or folder")
    cards = sorted(candidate.glob("*.card.json"))
    if len(cards) != 1:
        _refuse(f"--candidate {candidate} holds {len(cards)} model cards (*.card.json), not one")
    return cards[0]


def _check_file(path: Path, option: str, what: str) -> None:
    if not path.is_file():
        _refuse(f"{option} {path}: no {what} there")


@model_app.command("dataset")
def dataset_cmd(
    out: Annotated[Path, typer.Option(help="Folder for manifest.csv, held_back.csv, dataset.json, certified/.")],
    manifest: Annotated[
        Path, typer.Option(help="Development manifest.", show_default=portable(DEV_MANIFEST))
    ] = DEV_MANIFEST,
    certified: Annotated[
        Path | None,
        typer.Option(help="A certified-items manifest already exported (default: export it from the service's log)."),
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="The service's data dir (default: settings).")] = None,
    database_url: Annotated[str | None, typer.Option(help="The service's database URL (default: settings).")] = None,
    min_items: Annotated[int, typer.Option(help="Fewest training items per label and category.")] = 20,
    min_certified: Annotated[int, typer.Option(help="Fewest lab-certified items to train on.")] = 1,
) -> None:
    """Development photos + lab-certified items (revoked certificates and erased photos left out) ->
    a training manifest on frozen folds and the held-back evaluation slice; counts per category,
    label and lab. Exit 2 below the minimum."""
    from authenticator.errors import DatasetTooSmall
    from training.lifecycle import build_dataset

    _check_manifest(manifest, "--manifest")
    if certified is not None:
        _check_manifest(certified, "--certified", photos=False)
    if certified is None:
        from authenticator.config import Settings
        from authenticator.ledger.log import Ledger
        from authenticator.store.blobs import BlobStore
        from training.export_dataset import export_dataset

        overrides: dict[str, object] = {}
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        if database_url is not None:
            overrides["database_url"] = database_url
        settings = Settings(**overrides)  # type: ignore[arg-type]
        with _input_errors(), Ledger.from_settings(settings) as ledger:
            exported = export_dataset(ledger, BlobStore(settings.blob_dir), out / "certified")
        typer.echo("exported from the log: " + " ".join(f"{k}={v}" for k, v in exported.items()))
        certified = out / "certified" / "manifest.csv"
    try:
        with _input_errors():
            built = build_dataset(
                manifest, certified, out, min_items_per_label=min_items, min_certified_items=min_certified
            )
    except DatasetTooSmall as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(built.counts, indent=1))
    typer.echo(f"dataset: {out}")


@model_app.command("train")
def train_cmd(
    dataset: Annotated[Path, typer.Option(help="Folder written by `model dataset`.")],
    champion: Annotated[Path, typer.Option(help="Card of the serving model (the head recipe keeps its graph).")],
    out: Annotated[Path, typer.Option(help="Candidate folder (ONNX, card, bank, held-out scores).")],
    recipe: Annotated[
        str, typer.Option(help="head: refit the champion graph's head; full: python -m training train.")
    ] = ("head"),
    version: Annotated[str | None, typer.Option(help="Version string of the candidate (default: a timestamp).")] = None,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
) -> None:
    """Train a candidate on the dataset's frozen folds by the shipped pipeline's stages."""
    if recipe not in ("head", "full"):
        _refuse(f"--recipe {recipe!r}: choose head or full")
    _check_manifest(dataset / "manifest.csv", "--dataset")
    _check_file(champion, "--champion", "model card")
    import torch

    from training.lifecycle import train_candidate

    torch.set_num_threads(threads)
    with _input_errors():
        card = train_candidate(dataset, champion, out, recipe=recipe, version=version, log=typer.echo)
    typer.echo(f"candidate: {card}")


@model_app.command("evaluate")
def evaluate_cmd(
    candidate: Annotated[Path, typer.Option(help="Candidate card (or its folder).")],
    champion: Annotated[Path, typer.Option(help="Card of the serving model.")],
    dataset: Annotated[Path, typer.Option(help="Folder written by `model dataset` (the frozen split).")],
    out: Annotated[Path, typer.Option(help="Folder for report.json, report.md and the plots.")],
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals.")] = 200,
) -> None:
    """Champion vs candidate on the frozen evaluation split; the promotion rule's verdict."""
    from training.lifecycle import evaluate_candidate

    card = _card_of(candidate)
    _check_file(champion, "--champion", "model card")
    _check_file(dataset / "dataset.json", "--dataset", "dataset (dataset.json, written by `model dataset`)")
    with _input_errors():
        report = evaluate_candidate(card, champion, dataset, out, reps=bootstrap, log=typer.echo)
    verdict = "eligible for promotion" if report["promotion"]["eligible"] else "not eligible"
    typer.echo(f"{verdict}; report: {out / 'report.md'}")
    for c in report["promotion"]["checks"]:
        typer.echo(f"  {'ok ' if c['ok'] else 'NO '} {c['part']}: {c['check']} ({c['detail']})")
