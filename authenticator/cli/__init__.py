"""The ``authenticator`` command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(help="Authenticity verification service and its provenance ledger.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Authenticity verification for second-hand luxury goods, with a verifiable ledger."""


def _register() -> None:
    # Sub-apps are added here, one line each; modules stay small and single-purpose.
    from authenticator.cli.ledger import ledger_app

    app.add_typer(ledger_app, name="ledger")
    app.command("assess")(__import__("authenticator.cli.assess", fromlist=["assess"]).assess)
    pass


_register()
