"""``authenticator trace verify``: check an item's trace offline, as a buyer would.

Exit 0 when every check holds, 1 when one fails (each failure is named), 2 when the trace
cannot be read at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import typer

from authenticator.ledger.checkpoint import Checkpoint
from authenticator.trace_verify import verify_trace

trace_app = typer.Typer(help="Item traces: verifiable histories.", no_args_is_help=True)


def _load(source: str, since: int | None) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        import httpx

        url = source
        if since is not None:
            parts = urlsplit(source)
            query = "&".join(q for q in (parts.query, urlencode({"since": since})) if q)
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        try:
            response = httpx.get(url, timeout=30.0, follow_redirects=False)
        except httpx.HTTPError as exc:  # not an OSError: refused connections, timeouts, bad URLs
            raise ValueError(f"GET {url} failed: {exc}") from exc
        if response.status_code != 200:
            raise ValueError(f"GET {url} answered {response.status_code}")
        text = response.text
    else:
        text = Path(source).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except RecursionError as exc:  # whoever serves the trace chooses its nesting
        raise ValueError("the trace is nested too deeply to be a trace") from exc
    if not isinstance(data, dict):
        raise ValueError("a trace is a JSON object")
    return data


def _old_size(note: str) -> int | None:
    try:
        return Checkpoint.parse(note.split("\n\n", 1)[0] + "\n").size
    except Exception:
        return None


@trace_app.command("verify")
def verify(
    source: Annotated[str, typer.Argument(metavar="URL_OR_FILE", help="Trace URL (…/v1/items/ID/trace) or JSON file.")],
    key: Annotated[str, typer.Option("--key", help="The log's C2SP verifier key, obtained independently.")],
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="A signed checkpoint you kept earlier: check consistency.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Verify leaf hashes, inclusion proofs, the item's hash chain, the checkpoint signature (and consistency)."""
    old_note = checkpoint.read_text(encoding="utf-8") if checkpoint is not None else None
    try:
        trace = _load(source, _old_size(old_note) if old_note else None)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: cannot read the trace: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = verify_trace(trace, key.strip(), old_note)
    failures = report.all_failures()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "item_id": report.item_id,
                    "tree_size": report.checkpoint.size if report.checkpoint else None,
                    "checked": report.checked,
                    "events": [
                        {"index": e.index, "type": e.type, "ok": e.ok, "problems": e.problems} for e in report.events
                    ],
                    "failures": failures,
                },
                indent=2,
            )
        )
    else:
        for e in report.events:
            mark = "ok  " if e.ok else "FAIL"
            typer.echo(f"{mark} #{e.index} {e.type or '?'}" + ("" if e.ok else f": {'; '.join(e.problems)}"))
        for line in report.checked:
            typer.echo(f"ok   {line}")
        for line in report.failures:
            typer.echo(f"FAIL {line}")
        typer.echo("trace verified" if report.ok else f"trace NOT verified: {len(failures)} problem(s)")
    raise typer.Exit(0 if report.ok else 1)
