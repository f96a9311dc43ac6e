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
    app.command("serve")(__import__("authenticator.cli.serve", fromlist=["serve"]).serve)
    app.add_typer(__import__("authenticator.cli.keys", fromlist=["keys_app"]).keys_app, name="keys")
    app.add_typer(__import__("authenticator.cli.lab", fromlist=["lab_app"]).lab_app, name="lab")
    app.add_typer(__import__("authenticator.cli.trace", fromlist=["trace_app"]).trace_app, name="trace")
    app.add_typer(__import__("authenticator.cli.projections", fromlist=["app"]).projections_app, name="projections")
    pass


_register()
