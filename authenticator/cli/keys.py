"""``authenticator keys``: create (shown once), list, rotate and revoke API keys.

Keys live in the server's database, so every command says on stderr which database it uses, and
none starts a new one silently: without ``--db``, ``AUTHENTICATOR_DATABASE_URL`` or
``AUTHENTICATOR_DATA_DIR``, a missing ``./data/authenticator.db`` is an error that says how to
point the command at the server's database (a key made in a stray database gets 401 from the
server). Labs get their key when an operator registers them (``POST /v1/labs``), not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from authenticator.cli._context import named, open_context, settings_for
from authenticator.errors import InvalidInput
from authenticator.store import keys
from authenticator.text import check_free_text

keys_app = typer.Typer(help="API keys (stored only as hashes).", no_args_is_help=True)
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The server's database URL (default: AUTHENTICATOR_DATABASE_URL, else the SQLite file in "
        "AUTHENTICATOR_DATA_DIR, default ./data).",
    ),
]
CLI_ROLES = ("admin", "platform")
"""The roles ``keys create`` makes; a lab's key comes with its registration (``POST /v1/labs``)."""


def server_database(db: str | None) -> None:
    """Say on stderr which database the command uses; refuse to start one silently where the
    operator did not say (no ``--db``, ``AUTHENTICATOR_DATABASE_URL`` or ``AUTHENTICATOR_DATA_DIR``)."""
    settings = settings_for(db)
    url = settings.resolved_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    explicit = named(db, settings)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists() and not explicit:
            typer.echo(
                f"error: there is no database at {path}, and none was named. Keys must go into the database the "
                "server uses, or the server answers 401 for them. Run this command with the server's settings: "
                "the same AUTHENTICATOR_DATA_DIR (or --db URL / AUTHENTICATOR_DATABASE_URL, as the server was "
                "started with). To start a new database in ./data on purpose, set AUTHENTICATOR_DATA_DIR=./data.",
                err=True,
            )
            raise typer.Exit(2)
        if not path.exists():
            typer.echo(f"note: no database at {path} yet: creating a new, empty one", err=True)
    typer.echo(f"database: {shown}", err=True)


@keys_app.command("create")
def create(
    role: Annotated[
        str,
        typer.Option(help="admin (operators) or platform (marketplaces, sellers). Labs get theirs from POST /v1/labs."),
    ] = "platform",
    name: Annotated[str, typer.Option(help="Who the key is for.")] = "operator",
    db: DbOption = None,
) -> None:
    """Create a principal and its API key in the server's database; the key is printed once and never stored."""
    if role == "lab":
        typer.echo(
            "error: a lab's key comes with its registration: an operator registers the lab with its public key "
            "(POST /v1/labs with name, accreditation and public_key; see the README) and gets the lab's key back",
            err=True,
        )
        raise typer.Exit(2)
    if role not in CLI_ROLES:
        typer.echo(f"error: role must be one of {', '.join(CLI_ROLES)}", err=True)
        raise typer.Exit(2)
    try:
        check_free_text(name, "name")
    except InvalidInput as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if not name.strip() or len(name) > 200:
        typer.echo("error: name must be a text of 1 to 200 characters, not blank", err=True)
        raise typer.Exit(2)
    server_database(db)
    with open_context(db, create="yes") as ctx:
        issued = keys.create_key(ctx.engine, role, name)
    typer.echo(
        json.dumps(
            {
                "principal_id": issued.principal_id,
                "role": issued.role,
                "key_id": issued.key_id,
                "api_key": issued.api_key,
            }
        )
    )


@keys_app.command("list")
def list_(db: DbOption = None) -> None:
    """Key ids, roles and owners (never the keys)."""
    server_database(db)
    with open_context(db, create="yes") as ctx:
        typer.echo(json.dumps(keys.list_keys(ctx.engine), indent=2))


@keys_app.command("revoke")
def revoke(key_id: str, db: DbOption = None) -> None:
    """Revoke a key at once."""
    server_database(db)
    with open_context(db, create="yes") as ctx:
        keys.revoke_key(ctx.engine, key_id)
    typer.echo(f"revoked {key_id}")


@keys_app.command("rotate")
def rotate(key_id: str, db: DbOption = None) -> None:
    """Replace a key: a new key for the same principal (its items, labs and certificates stay
    its own), printed once; then the old key is revoked."""
    server_database(db)
    with open_context(db, create="yes") as ctx:
        owner = next((k for k in keys.list_keys(ctx.engine) if k["key_id"] == key_id and not k["revoked_at"]), None)
        if owner is None:
            typer.echo(f"error: no active key {key_id}", err=True)
            raise typer.Exit(2)
        issued = keys.issue_key(ctx.engine, str(owner["principal_id"]))
        keys.revoke_key(ctx.engine, key_id)
    typer.echo(
        json.dumps(
            {
                "principal_id": issued.principal_id,
                "role": issued.role,
                "key_id": issued.key_id,
                "api_key": issued.api_key,
                "revoked": key_id,
            }
        )
    )
