"""``authenticator model {dataset,train,evaluate,promote,rollback,shadow,list}``: the model lifecycle.

``dataset``, ``train`` and ``evaluate`` run ``python -m training model ...`` in a subprocess (they
need the ``train`` extra: torch, scikit-learn; the service itself never imports them); ``promote``,
``rollback`` and ``shadow`` append to the log in this process. Default folders live under the data
dir: ``<data_dir>/lifecycle/dataset`` and ``<data_dir>/lifecycle/candidates/<version>``.

Exit status: 0 done; 2 refused (a dataset below the minimum, a candidate that fails the promotion
rule, nothing to roll back to), a usage error, or an input that is not there or not of its kind
(checked here, before the subprocess starts: one ``error:`` line, as the subprocess says its own);
the training subprocess's status otherwise. A database that is not there is an error, except
that ``promote``, ``rollback`` and ``shadow`` (which write) start one where the operator named it
(``--db``, ``AUTHENTICATOR_DATABASE_URL`` or ``AUTHENTICATOR_DATA_DIR``), as ``keys`` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from authenticator.cli._context import existing_database, open_context, settings_for
from authenticator.cli._errors import refuse as _refuse
from authenticator.config import Settings

model_app = typer.Typer(help="The model lifecycle: dataset, train, evaluate, promote, rollback, shadow.")

Db = Annotated[str | None, typer.Option("--db", help="Database URL (default: the data dir's SQLite file).")]


def _lifecycle_dir(settings: Settings) -> Path:
    return settings.data_dir / "lifecycle"


def _check_folder(path: Path, option: str, holding: str, made_by: str) -> None:
    """``path`` is a folder holding ``holding`` (the file ``made_by`` writes there)."""
    if not path.exists():
        _refuse(f"{option} {path}: no such folder")
    if not path.is_dir():
        _refuse(f"{option} {path}: not a folder")
    if not (path / holding).is_file():
        _refuse(f"{option} {path} holds no {holding}: give the folder `{made_by}` wrote")


def _check_candidate(candidate: Path) -> None:
    """A candidate folder holding one model card (``*.card.json``), or that card."""
    if candidate.is_dir():
        cards = sorted(candidate.glob("*.card.json"))
        if len(cards) != 1:
            _refuse(
                f"{candidate} holds {len(cards)} model cards (*.card.json), not one: give the candidate folder "
                "`authenticator model train` wrote, or its card"
            )
    elif not candidate.exists():
        _refuse(f"{candidate}: no such file or folder")
    elif not candidate.name.endswith(".json"):
        _refuse(f"{candidate} is not a model card (*.card.json) nor a candidate folder")


def _training(args: list[str], settings: Settings) -> None:
    """``python -m training model ARGS`` with this deployment's settings; its exit status is ours."""
    env_args = ["--data-dir", str(settings.data_dir)] if args[0] == "dataset" else []
    if args[0] == "dataset" and settings.database_url:
        env_args += ["--database-url", settings.database_url]
    done = subprocess.run([sys.executable, "-m", "training", "model", *args, *env_args], check=False)
    if done.returncode:
        raise typer.Exit(done.returncode)


def _serving_card(db: str | None) -> Path:
    from authenticator.services.lifecycle import card_path_of, serving_sha256

    with open_context(db) as ctx:
        return card_path_of(ctx.settings, serving_sha256(ctx))


@model_app.command("dataset")
def dataset(
    out: Annotated[Path | None, typer.Option(help="Dataset folder (default <data_dir>/lifecycle/dataset).")] = None,
    manifest: Annotated[Path | None, typer.Option(help="Development manifest (default ../shared/data/real).")] = None,
    min_items: Annotated[int, typer.Option(help="Fewest training items per label and category.")] = 20,
    min_certified: Annotated[int, typer.Option(help="Fewest lab-certified items to train on.")] = 1,
    db: Db = None,
) -> None:
    """Development photos + lab-certified items from the log (latest unrevoked certificate; erased
    photos left out) -> training manifest (frozen folds) + held-back evaluation slice, with counts
    per category, label and lab. Refuses (exit 2) below the minimum."""
    if manifest is not None and not manifest.is_file():
        _refuse(f"--manifest {manifest}: " + ("not a file" if manifest.exists() else "no such file"))
    settings = existing_database(db)  # the certified items come from the server's log
    target = out or _lifecycle_dir(settings) / "dataset"
    args = ["dataset", "--out", str(target), "--min-items", str(min_items), "--min-certified", str(min_certified)]
    if manifest is not None:
        args += ["--manifest", str(manifest)]
    _training(args, settings)


@model_app.command("train")
def train(
    dataset: Annotated[Path | None, typer.Option(help="Dataset folder (default <data_dir>/lifecycle/dataset).")] = None,
    out: Annotated[Path | None, typer.Option(help="Candidate folder (default .../candidates/<version>).")] = None,
    recipe: Annotated[
        str,
        typer.Option(help="head: the serving model's graph, head refitted (minutes); full: make weights' pipeline."),
    ] = "head",
    version: Annotated[str | None, typer.Option(help="The candidate's version (default: a UTC timestamp).")] = None,
    db: Db = None,
) -> None:
    """Train a candidate (ONNX + card + bank) on the dataset, by the pipeline of make weights."""
    settings = settings_for(db)
    if recipe not in ("head", "full"):
        _refuse(f"--recipe {recipe!r}: choose head or full")
    version = version or datetime.now(UTC).strftime("%Y.%m.%d-%H%M%S")
    target = out or _lifecycle_dir(settings) / "candidates" / version
    source = dataset or _lifecycle_dir(settings) / "dataset"
    _check_folder(source, "--dataset", "manifest.csv", "authenticator model dataset")
    champion = _serving_card(db)
    _training(
        [
            "train",
            "--dataset",
            str(source),
            "--champion",
            str(champion),
            "--out",
            str(target),
            "--recipe",
            recipe,
            "--version",
            version,
        ],
        settings,
    )


@model_app.command("evaluate")
def evaluate(
    candidate: Annotated[Path, typer.Argument(help="Candidate folder (or its card).")],
    dataset: Annotated[Path | None, typer.Option(help="Dataset folder with the frozen split.")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default CANDIDATE/evaluation).")] = None,
    db: Db = None,
) -> None:
    """Champion (the serving model) vs CANDIDATE on the frozen evaluation split: false-pass,
    coverage, AUROC per source and category with 95% intervals; report.md, report.json, plots."""
    settings = settings_for(db)
    _check_candidate(candidate)
    source = dataset or _lifecycle_dir(settings) / "dataset"
    _check_folder(source, "--dataset", "dataset.json", "authenticator model dataset")
    folder = candidate if candidate.is_dir() else candidate.parent
    _training(
        [
            "evaluate",
            "--candidate",
            str(candidate),
            "--champion",
            str(_serving_card(db)),
            "--dataset",
            str(source),
            "--out",
            str(out or folder / "evaluation"),
        ],
        settings,
    )


@model_app.command("promote")
def promote(
    candidate: Annotated[Path, typer.Argument(help="Candidate folder (or its card).")],
    evaluation: Annotated[Path | None, typer.Option(help="Its evaluation (default CANDIDATE/evaluation).")] = None,
    db: Db = None,
) -> None:
    """Serve CANDIDATE from now on, if its evaluation against the serving model meets the rule
    (false-pass <= 1% in every category with a verdict, not worse than the champion's, coverage not
    lower): appends model.promoted; running servers switch before their next assessment."""
    from authenticator.services.lifecycle import promote as run

    _check_candidate(candidate)
    folder = candidate if candidate.is_dir() else candidate.parent
    with open_context(db, create="if_named") as ctx:
        done = run(ctx, candidate, evaluation or folder / "evaluation")
    typer.echo(json.dumps(done.model_dump(exclude={"checks"}), indent=2))


@model_app.command("rollback")
def rollback(db: Db = None) -> None:
    """Serve again the model the serving one replaced (model.promoted, action rollback)."""
    from authenticator.services.lifecycle import rollback as run

    with open_context(db, create="if_named") as ctx:
        typer.echo(json.dumps(run(ctx).model_dump(), indent=2))


@model_app.command("shadow")
def shadow(
    candidate: Annotated[str, typer.Argument(help="Candidate folder (to start) or a shadow model's sha256 (--stop).")],
    stop: Annotated[bool, typer.Option("--stop", help="Stop scoring with this shadow model.")] = False,
    evaluation: Annotated[Path | None, typer.Option(help="Its evaluation, if any (shown with the model).")] = None,
    db: Db = None,
) -> None:
    """Score live assessments with CANDIDATE in the background (never part of a verdict); see
    GET /v1/models/{sha256}/shadow."""
    from authenticator.services.lifecycle import start_shadow, stop_shadow

    if not stop:
        _check_candidate(Path(candidate))
    with open_context(db, create="if_named") as ctx:
        if stop:
            done = stop_shadow(ctx, candidate)
        else:
            path = Path(candidate)
            default = path / "evaluation"
            done = start_shadow(ctx, path, evaluation=evaluation or (default if default.is_dir() else None))
    typer.echo(json.dumps(done.model_dump(), indent=2))


@model_app.command("list")
def list_models(db: Db = None) -> None:
    """Every registered model with its status (serving, shadow, retired, registered) and lineage."""
    from authenticator.services.lifecycle import models_with_lineage

    with open_context(db) as ctx:
        for m in models_with_lineage(ctx):
            ev = m.evaluation or {}
            typer.echo(
                f"{m.status:10s} {m.sha256[:16]}  {m.name} {m.version}  "
                f"lineage entries: {len(m.lineage)}" + (f"  eligible: {ev.get('eligible')}" if ev else "")
            )
