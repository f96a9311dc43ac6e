"""Opening the service context for CLI commands: one line of error, exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from authenticator.cli._errors import describe
from authenticator.config import Settings
from authenticator.errors import AuthenticatorError
from authenticator.services.context import ServiceContext


def settings_for(db: str | None) -> Settings:
    """Settings from the environment, with ``--db`` overriding the database URL."""
    settings = Settings()
    return settings.model_copy(update={"database_url": db}) if db else settings


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for an in-memory one or another database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # not a URL: opening it says what is wrong
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def named(db: str | None, settings: Settings) -> bool:
    """Whether the operator said where the database is (``--db``, ``AUTHENTICATOR_DATABASE_URL``
    or ``AUTHENTICATOR_DATA_DIR``), rather than the default ``./data`` applying."""
    return db is not None or bool({"data_dir", "database_url"} & settings.model_fields_set)


def existing_database(db: str | None, *, unless_named: bool = False) -> Settings:
    """Settings of a command that uses the server's database: a SQLite file that is not there is
    an error naming where it looked, never a new, empty database (and log key) that would answer
    "0 entries" or "ok" about the wrong place. ``unless_named``: a command that writes (``model
    promote``) may start one where the operator named it, as ``keys`` does; ``serve`` starts one."""
    settings = settings_for(db)
    path = sqlite_file(settings.resolved_database_url)
    if path is not None and not path.exists() and not (unless_named and named(db, settings)):
        typer.echo(
            f"error: there is no database at {path}; this command uses the server's database and does not "
            "start a new one. Run it with the server's settings: --db URL, or the same AUTHENTICATOR_DATA_DIR "
            "(or AUTHENTICATOR_DATABASE_URL) the server was started with.",
            err=True,
        )
        raise typer.Exit(2)
    return settings


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Print a project error as one line and exit 2 instead of showing a traceback."""
    try:
        yield
    except AuthenticatorError as exc:
        typer.echo(f"error: {describe(exc)}", err=True)
        raise typer.Exit(2) from exc


@contextmanager
def open_context(db: str | None, *, create: Literal["never", "if_named", "yes"] = "never") -> Iterator[ServiceContext]:
    """The service context on the server's database. A missing one is refused (``never``), started
    only where the operator named it (``if_named``: commands that write), or started (``yes``:
    ``keys``, after :func:`~authenticator.cli.keys.server_database` checked and said so)."""
    settings = settings_for(db) if create == "yes" else existing_database(db, unless_named=create == "if_named")
    with one_line_errors():
        ctx = ServiceContext.open(settings, load_model=False)
        try:
            yield ctx
        finally:
            ctx.close()
