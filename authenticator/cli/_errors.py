"""Errors on the command line: one line a person can act on, exit 2, never a traceback.

Every ``authenticator`` command runs inside :class:`OneLineErrorsGroup`: a wrong file (missing,
a folder, unreadable, not UTF-8, not the right kind), a wrong key or an unreachable server ends
in ``error: …`` on stderr and exit status 2, whichever command met it. Commands still say more
where they know more (``lab sign --key lab.pub`` names the mix-up). ``AUTHENTICATOR_TRACEBACK=1``
shows the traceback for a bug report.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from authenticator.errors import AuthenticatorError


def refuse(message: str) -> NoReturn:
    """A usage error: one ``error:`` line on stderr, exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _validation(exc: ValidationError) -> str:
    """A setting (``AUTHENTICATOR_…``) or a file's field, and what is wrong with its value."""
    from authenticator.config import Settings

    prefix = str(Settings.model_config.get("env_prefix", "")) if exc.title == Settings.__name__ else ""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        name = f"{prefix}{where.upper()}" if prefix and where else where or exc.title
        value = f" (got {err['input']!r})" if prefix and "input" in err and not isinstance(err["input"], dict) else ""
        parts.append(f"{name}: {err['msg']}{value}")
    return ("invalid setting " if prefix else f"invalid {exc.title}: ") + "; ".join(parts)


def describe(exc: BaseException) -> str:
    """One line about ``exc`` for a person (the file it concerns first, for file errors)."""
    return " ".join(_describe(exc).split())  # one line, whatever a message embeds


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return _validation(exc)
    if isinstance(exc, AuthenticatorError):
        return exc.message
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file or folder"
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename}: is a folder, not a file"
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied"
    if isinstance(exc, UnicodeDecodeError):
        return f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    if type(exc).__module__.startswith("httpx"):
        return f"the server could not be reached: {exc}"
    return str(exc) or type(exc).__name__


class OneLineErrorsGroup(TyperGroup):
    """The top-level command group: turns what a wrong input raises into one ``error:`` line."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors and exits say their own words
            raise
        except Exception as exc:
            if os.environ.get("AUTHENTICATOR_TRACEBACK") == "1":
                raise
            known = isinstance(exc, AuthenticatorError | OSError | ValueError | UnicodeError)
            known = known or type(exc).__module__.startswith("httpx")
            prefix = "error" if known else f"error: unexpected {type(exc).__name__}"
            typer.echo(f"{prefix}: {describe(exc)}", err=True)
            if not known:
                typer.echo("(set AUTHENTICATOR_TRACEBACK=1 to see the traceback for a bug report)", err=True)
            raise typer.Exit(2) from exc
