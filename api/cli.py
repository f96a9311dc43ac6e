"""``authenticator serve``: the HTTP API under uvicorn (the app is built by ``api.app.create_app``).

The command lives with the app it serves; the core's command line registers it by an explicit
import (``authenticator/cli/__init__.py``), the one place where ``authenticator`` depends on ``api``
besides ``assess``, which checks a declared product line by the API's own ``ItemCreate``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from api.logredact import install as install_log_redaction
from authenticator.config import Settings
from authenticator.errors import AuthenticatorError
from authenticator.ledger.log import Ledger


def _preflight() -> Settings:
    """Open the log once with its key before any worker starts; refuse to start on an error.

    A key file with loose permissions, or one that did not sign the log's checkpoints, must stop
    the server with one clear line and a non-zero exit: with several workers uvicorn would
    otherwise print a traceback per worker and exit 0, which a supervisor reads as success.
    """
    settings = Settings()
    try:
        Ledger.from_settings(settings).close()
    except AuthenticatorError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    return settings


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each loads the model once).")] = 1,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: the data dir's SQLite file).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the API (OpenAPI at /docs) on the embedded SQLite default or the given database."""
    import uvicorn

    if db:
        # Workers are separate processes that build their settings from the environment.
        os.environ["AUTHENTICATOR_DATABASE_URL"] = db

    settings = _preflight()
    install_log_redaction()  # this process's own lines (start-up, worker supervision) too
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        # The edge (api/server_protocol.py): h11 with a bounded request head (431 over
        # api_max_header_bytes, 414 over api_max_url_bytes) and problem+json for every protocol
        # error. Not httptools: it buffers a header of any size while other clients wait.
        http="api.server_protocol:EdgeH11Protocol",
        h11_max_incomplete_event_size=settings.api_max_header_bytes,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        server_header=False,
        **proxy_options(settings),
    )


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's forwarded-header options: believe ``X-Forwarded-Proto``/``-For`` only from the
    configured proxies (``AUTHENTICATOR_TRUSTED_PROXIES``); without any, from nobody."""
    proxies = settings.trusted_proxy_list
    if not proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": proxies}
