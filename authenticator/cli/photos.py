"""``authenticator photos purge``: erase photos older than the retention period (for cron)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from authenticator.cli._context import open_context, settings_for

photos_app = typer.Typer(help="Photos in the blob store: retention.", no_args_is_help=True)
DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: the settings').")]
MAX_RETENTION_DAYS = 36_525
"""A hundred years: a cutoff further back than that is a typo (and past year 1 it cannot be computed)."""


@photos_app.command("purge")
def purge(
    older_than_days: Annotated[
        int | None,
        typer.Option(
            "--older-than-days",
            min=0,
            max=MAX_RETENTION_DAYS,
            help="Erase photos recorded more than N days ago (default: AUTHENTICATOR_PHOTO_RETENTION_DAYS).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be erased.")] = False,
    db: DbOption = None,
) -> None:
    """Erase old photos and their heat maps, one `photos.erased` per assessment (by `operator`,
    reason `retention`); the verdicts and every proof stay. Safe to run again at any time."""
    days = older_than_days if older_than_days is not None else settings_for(db).photo_retention_days
    if days is None:
        typer.echo(
            "error: no retention period: pass --older-than-days N or set AUTHENTICATOR_PHOTO_RETENTION_DAYS", err=True
        )
        raise typer.Exit(2)
    if days > MAX_RETENTION_DAYS:  # the setting's value; the option has its own range
        typer.echo(
            f"error: AUTHENTICATOR_PHOTO_RETENTION_DAYS: at most {MAX_RETENTION_DAYS} days (got {days})", err=True
        )
        raise typer.Exit(2)
    from authenticator.services.erasure import purge_older_than

    with open_context(db) as ctx:
        summary = purge_older_than(ctx, timedelta(days=days), dry_run=dry_run)
    verb = "would erase" if dry_run else "erased"
    typer.echo(
        f"{verb} {summary.photos} photo{'s' if summary.photos != 1 else ''} of {summary.assessments} "
        f"assessment{'s' if summary.assessments != 1 else ''} recorded before {summary.cutoff}"
        + ("" if dry_run else f" ({summary.entries} photos.erased entr{'y' if summary.entries == 1 else 'ies'})")
    )
    for assessment_id in summary.assessment_ids:
        typer.echo(f"  {assessment_id}")
