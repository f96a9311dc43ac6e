"""``authenticator trace verify``: check an item's trace offline, as a buyer would.

Exit 0 when every check holds, 1 when one fails (each failure is named), 2 when an argument
is unusable (a --key or --witness that is not a verifier key: nothing was checked) or the
trace cannot be read at all.

The source may be the trace's API address (``…/v1/items/ID/trace``), the item's page address
that QR codes and tags hold (``…/t/ID``; the trace is fetched from the same site), a listing's
page (``…/l/ID``: its item's trace) or a JSON file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import typer

from authenticator.errors import CheckpointError
from authenticator.ledger.checkpoint import Checkpoint
from authenticator.ledger.cosignature import CosignatureVerifier
from authenticator.ledger.note import NoteVerifier
from authenticator.trace_verify import verify_trace

trace_app = typer.Typer(help="Item traces: verifiable histories.", no_args_is_help=True)


PAGE_PATH = re.compile(r"^(?P<base>.*)/t/(?P<item>[^/]+)/?$")
LISTING_PATH = re.compile(r"^(?P<base>.*)/l/(?P<listing>[^/]+)/?$")


def trace_url(source: str) -> str:
    """The trace's API address for a page address (``…/t/ID``, ``…/l/ID``) or the address itself.

    A listing page's item is looked up on the same site (``GET …/v1/listings/ID``)."""
    parts = urlsplit(source)
    page = PAGE_PATH.match(parts.path)
    if page is not None:
        path = f"{page['base']}/v1/items/{page['item']}/trace"
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    listing = LISTING_PATH.match(parts.path)
    if listing is not None:
        import httpx

        api = urlunsplit((parts.scheme, parts.netloc, f"{listing['base']}/v1/listings/{listing['listing']}", "", ""))
        try:
            response = httpx.get(api, timeout=30.0, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise ValueError(f"GET {api} failed: {exc}") from exc
        if response.status_code != 200:
            raise ValueError(f"GET {api} answered {response.status_code}: no such listing?")
        try:
            item = str(response.json()["item_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"GET {api} did not answer a listing") from exc
        path = f"{listing['base']}/v1/items/{quote(item, safe='')}/trace"
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return source


def _load(source: str, since: int | None) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        import httpx

        url = source = trace_url(source)
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
    except ValueError as exc:
        raise ValueError(
            f"{source} is not a trace (not JSON: {exc}). Give the item's page address (…/t/ITEM), its trace "
            "address (…/v1/items/ITEM/trace) or a trace saved as JSON."
        ) from exc
    if not isinstance(data, dict):
        raise ValueError("a trace is a JSON object")
    return data


def _old_size(note: str) -> int:
    """The tree size of a checkpoint note given with --checkpoint; a file that is not one is a
    usage error (exit 2), not a trace that failed to verify."""
    try:
        return Checkpoint.parse(note.split("\n\n", 1)[0] + "\n").size
    except (CheckpointError, ValueError) as exc:
        reason = exc.message if isinstance(exc, CheckpointError) else str(exc)
        typer.echo(f"error: --checkpoint is not a signed checkpoint note: {reason}", err=True)
        raise typer.Exit(2) from exc


@trace_app.command("verify")
def verify(
    source: Annotated[
        str,
        typer.Argument(
            metavar="URL_OR_FILE",
            help="The item's page address (…/t/ID, as in its QR code), its trace URL (…/v1/items/ID/trace), "
            "a listing page (…/l/ID) or a trace saved as JSON.",
        ),
    ],
    key: Annotated[str, typer.Option("--key", help="The log's C2SP verifier key, obtained independently.")],
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="A signed checkpoint you kept earlier: check consistency.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            help="A witness's C2SP verifier key (type 0x04), obtained from its operator; repeat for more.",
        ),
    ] = None,
    min_witnesses: Annotated[
        int | None,
        typer.Option(
            "--min-witnesses",
            min=0,
            help="How many of the --witness keys must have cosigned the checkpoint (default: 1 when any "
            "--witness is given, else none).",
        ),
    ] = None,
) -> None:
    """Verify leaf hashes, inclusion proofs, the item's hash chain, the checkpoint signature (and consistency,
    and the witnesses' cosignatures)."""
    key = key.strip()
    try:
        NoteVerifier.from_verifier_key(key)
    except CheckpointError as exc:  # a usage error, not a trace that failed to verify
        typer.echo(f"error: --key is not a log verifier key (NAME+HASH+BASE64): {exc.message}", err=True)
        raise typer.Exit(2) from exc
    witnesses = [w.strip() for w in witness or []]
    required = min_witnesses if min_witnesses is not None else (1 if witnesses else 0)
    if required > len(witnesses):
        typer.echo(
            f"error: --min-witnesses {required} needs at least {required} --witness key(s); {len(witnesses)} given",
            err=True,
        )
        raise typer.Exit(2)
    for w in witnesses:
        try:
            CosignatureVerifier.from_verifier_key(w)
        except CheckpointError as exc:
            typer.echo(f"error: --witness {w}: {exc.message}", err=True)
            raise typer.Exit(2) from exc
    try:
        old_note = checkpoint.read_text(encoding="utf-8") if checkpoint is not None else None
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read the checkpoint {checkpoint}: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        since = _old_size(old_note) if old_note is not None else None
        trace = _load(source, since)
    except OSError as exc:
        typer.echo(f"error: cannot read the trace: {exc.strerror or exc}: {source}", err=True)
        raise typer.Exit(2) from exc
    except ValueError as exc:
        typer.echo(f"error: cannot read the trace: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = verify_trace(trace, key, old_note, witnesses=witnesses, min_witnesses=required)
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
                    "witnessed_by": [
                        {"name": c.name, "verifier_key": c.verifier_key, "timestamp": c.timestamp}
                        for c in report.witnessed_by
                    ],
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
