"""``authenticator serve``: the HTTP API under uvicorn (the app is built by ``api.app.create_app``)."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each loads the model once).")] = 1,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: the data dir's SQLite file).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the API (OpenAPI at /docs) on the embedded SQLite default or the given database."""
    import uvicorn

    if db:
        # Workers are separate processes that build their settings from the environment.
        os.environ["AUTHENTICATOR_DATABASE_URL"] = db
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
    )
