"""The ``authenticator`` command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

from api.cli import serve  # the API's own command: the core CLI depends on api/ here, explicitly
from authenticator.cli._errors import OneLineErrorsGroup
from authenticator.cli.assess import assess
from authenticator.cli.keys import keys_app
from authenticator.cli.lab import lab_app
from authenticator.cli.ledger import ledger_app
from authenticator.cli.model import model_app
from authenticator.cli.photos import photos_app
from authenticator.cli.projections import projections_app
from authenticator.cli.trace import trace_app
from authenticator.cli.witness import witness_app

app = typer.Typer(
    help="Authenticity verification service and its provenance ledger.",
    no_args_is_help=True,
    cls=OneLineErrorsGroup,  # a wrong file or key: one "error:" line, exit 2, never a traceback
)


@app.callback()
def main() -> None:
    """Authenticity verification for second-hand luxury goods, with a verifiable ledger."""


app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")
app.add_typer(lab_app, name="lab")
app.add_typer(trace_app, name="trace")
app.add_typer(projections_app, name="projections")
app.add_typer(photos_app, name="photos")
app.add_typer(model_app, name="model")
app.add_typer(witness_app, name="witness")
app.command("assess")(assess)
app.command("serve")(serve)
