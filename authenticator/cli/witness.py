"""``authenticator witness ...``: run an independent witness (C2SP tlog-witness).

A witness has its own key and its own state, both in its data folder (``witness.key``, made
0600 on first use, and ``witness.db``), nothing shared with the log it watches. Run it on
another machine, under another operator, and give the log its URL and verifier key
(``AUTHENTICATOR_WITNESSES``); give buyers its verifier key (``trace verify --witness``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from authenticator.cli._context import one_line_errors
from authenticator.witness.witness import open_witness


def _folder(data_dir: Path) -> None:
    """Refuse a --data-dir that is a file, saying so (mkdir would only say "File exists")."""
    if data_dir.exists() and not data_dir.is_dir():
        typer.echo(f"error: --data-dir {data_dir}: not a folder", err=True)
        raise typer.Exit(2)


witness_app = typer.Typer(help="An independent witness that cosigns the log's checkpoints.", no_args_is_help=True)

NameOption = Annotated[
    str,
    typer.Option(
        "--name",
        envvar="AUTHENTICATOR_WITNESS_NAME",
        help="The witness's key name, by convention a schema-less URL (e.g. witness.example.org/w1).",
    ),
]
DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="AUTHENTICATOR_WITNESS_DATA_DIR",
        help="Folder of the witness's key (witness.key) and state (witness.db), kept apart from any log's data.",
    ),
]
LogOption = Annotated[
    list[str],
    typer.Option(
        "--log",
        envvar="AUTHENTICATOR_WITNESS_LOGS",
        help="A log's C2SP verifier key (its name is the log's origin); repeat for more logs. "
        "From the environment: keys separated by spaces.",
    ),
]


@witness_app.command("key")
def key(
    name: NameOption,
    data_dir: DataDirOption = Path("./witness-data"),
) -> None:
    """Print the witness's verifier key (type 0x04, tlog-cosignature), making the key on first use."""
    from authenticator.ledger.checkpoint import load_or_create_ed25519_key
    from authenticator.ledger.cosignature import CosignatureSigner
    from authenticator.witness.witness import KEY_FILE

    _folder(data_dir)
    with one_line_errors():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        signer = CosignatureSigner(name, load_or_create_ed25519_key(data_dir / KEY_FILE, "witness key"))
        typer.echo(signer.verifier_key)


@witness_app.command("serve")
def serve(
    name: NameOption,
    log: LogOption,
    data_dir: DataDirOption = Path("./witness-data"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8381,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve POST /add-checkpoint: cosign each checkpoint consistent with the last one cosigned."""
    import uvicorn

    from authenticator.witness.asgi import WitnessApp

    _folder(data_dir)
    with one_line_errors():
        witness = open_witness(data_dir, name, [k for entry in log for k in entry.split()])
    typer.echo(f"witness {name}: verifier key {witness.signer.verifier_key}", err=True)
    for keys in witness.logs.values():
        for v in keys:
            typer.echo(f"witnessing {v.name} ({v.verifier_key})", err=True)
    uvicorn.run(
        WitnessApp(witness),
        host=host,
        port=port,
        http="h11",
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
    )
