"""Opening the service context for CLI commands: one line of error, exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from authenticator.config import Settings
from authenticator.errors import AuthenticatorError
from authenticator.services.context import ServiceContext


def settings_for(db: str | None) -> Settings:
    """Settings from the environment, with ``--db`` overriding the database URL."""
    settings = Settings()
    return settings.model_copy(update={"database_url": db}) if db else settings


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Print a project error as one line and exit 2 instead of showing a traceback."""
    try:
        yield
    except AuthenticatorError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc


@contextmanager
def open_context(db: str | None) -> Iterator[ServiceContext]:
    with one_line_errors():
        ctx = ServiceContext.open(settings_for(db), load_model=False)
        try:
            yield ctx
        finally:
            ctx.close()
