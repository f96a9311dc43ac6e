"""Opening the service context for CLI commands: one line of error, exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from authenticator.config import Settings
from authenticator.errors import AuthenticatorError
from authenticator.services.context import ServiceContext


@contextmanager
def open_context(db: str | None) -> Iterator[ServiceContext]:
    try:
        settings = Settings()
        if db:
            settings = settings.model_copy(update={"database_url": db})
        ctx = ServiceContext.open(settings, load_model=False)
        try:
            yield ctx
        finally:
            ctx.close()
    except AuthenticatorError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
