"""``authenticator projections``: rebuild the query tables from the log and the blob store.

Both commands work on the server's existing database: one that is not there is an error, not a
new, empty one that would report "applied 0 of 0"."""

from __future__ import annotations

from typing import Annotated

import typer

from authenticator.cli._context import open_context

projections_app = typer.Typer(help="Projection tables derived from the log.", no_args_is_help=True)
DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: the settings').")]


@projections_app.command("rebuild")
def rebuild(db: DbOption = None) -> None:
    """Empty the projection tables and replay every log entry (one transaction)."""
    with open_context(db) as ctx:
        size = ctx.projector.rebuild()
    typer.echo(f"rebuilt projections from {size} log entries")


@projections_app.command("status")
def status(db: DbOption = None) -> None:
    """How many log entries the projections reflect, and the log's size."""
    with open_context(db) as ctx:
        typer.echo(f"applied {ctx.projector.applied_size()} of {ctx.ledger.size()} entries")
