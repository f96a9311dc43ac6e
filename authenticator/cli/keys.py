"""``authenticator keys``: create (shown once), list, rotate and revoke API keys."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from authenticator.cli._context import open_context
from authenticator.errors import InvalidInput
from authenticator.store import keys
from authenticator.text import check_free_text

keys_app = typer.Typer(help="API keys (stored only as hashes).", no_args_is_help=True)
DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: the settings').")]


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option(help="admin, platform or lab.")] = "platform",
    name: Annotated[str, typer.Option(help="Who the key is for.")] = "operator",
    db: DbOption = None,
) -> None:
    """Create a principal and its API key; the key is printed once and never stored."""
    if role not in keys.ROLES:
        typer.echo(f"error: role must be one of {', '.join(keys.ROLES)}", err=True)
        raise typer.Exit(2)
    if role == "lab":
        typer.echo("error: labs are registered with their public key: POST /v1/labs (admin)", err=True)
        raise typer.Exit(2)
    try:
        check_free_text(name, "name")
    except InvalidInput as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if not name.strip() or len(name) > 200:
        typer.echo("error: name must be a text of 1 to 200 characters, not blank", err=True)
        raise typer.Exit(2)
    with open_context(db) as ctx:
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
    with open_context(db) as ctx:
        typer.echo(json.dumps(keys.list_keys(ctx.engine), indent=2))


@keys_app.command("revoke")
def revoke(key_id: str, db: DbOption = None) -> None:
    """Revoke a key at once."""
    with open_context(db) as ctx:
        keys.revoke_key(ctx.engine, key_id)
    typer.echo(f"revoked {key_id}")


@keys_app.command("rotate")
def rotate(key_id: str, db: DbOption = None) -> None:
    """Replace a key: a new key for the same principal (its items, labs and certificates stay
    its own), printed once; then the old key is revoked."""
    with open_context(db) as ctx:
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
