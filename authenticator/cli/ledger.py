"""``authenticator ledger ...``: verify the log, print checkpoints, proofs, keys and histories.

Every command prints JSON (hashes in standard base64) except ``checkpoint`` and ``key``, which
print the signed note and the verifier key exactly as other tools consume them. The database
is the settings' one unless ``--db`` names another; a database that is not there is an error
(these commands never start a new log). Exit codes: 0 sound, 1 the log failed verification
(the first bad index is named on stderr), 2 any other error (an item the log holds nothing of, too).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from authenticator.cli._context import existing_database, one_line_errors
from authenticator.ledger.log import Ledger, StoredEntry

ledger_app = typer.Typer(help="The append-only provenance ledger.", no_args_is_help=True)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: AUTHENTICATOR_DATABASE_URL or the data dir's file).")
]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _emit(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


@contextmanager
def _ledger(db: str | None, *, check_key: bool = True) -> Iterator[Ledger]:
    """Open the ledger; print project errors as one line and exit 2 instead of a traceback."""
    settings = existing_database(db)
    with one_line_errors():
        ledger = Ledger.from_settings(settings, check_key=check_key)
        try:
            yield ledger
        finally:
            ledger.close()


def _entry_json(e: StoredEntry) -> dict[str, Any]:
    return {"index": e.index, "leaf_hash": _b64(e.leaf_hash), "type": e.type, "entry": json.loads(e.data)}


@ledger_app.command()
def verify(
    db: DbOption = None,
    hashes_only: Annotated[
        bool, typer.Option("--hashes-only", help="Skip the semantic pass (schemas, canonical form, item chains).")
    ] = False,
    key: Annotated[
        str | None, typer.Option("--key", help="Verifier key to check checkpoints with (default: the log's own).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Processes for the semantic pass (default: CPU count).")
    ] = None,
) -> None:
    """Recompute every leaf, subtree hash, checkpoint and item chain; exit 1 at the first bad index."""
    from authenticator.errors import CheckpointError
    from authenticator.ledger.note import NoteVerifier
    from authenticator.ledger.verify import verify_ledger

    if key is not None:  # a key that is no key is a usage error, not a log that fails to verify
        try:
            NoteVerifier.from_verifier_key(key.strip())
        except CheckpointError as exc:
            typer.echo(f"error: --key is not a log verifier key (NAME+HASH+BASE64): {exc.message}", err=True)
            raise typer.Exit(2) from exc
    with _ledger(db, check_key=False) as ledger:
        report = verify_ledger(ledger, semantic=not hashes_only, workers=workers, verifier_key=key)
    _emit(report.to_dict())
    for warning in sorted(report.warnings):
        typer.echo(f"warning: index {warning.index}: {warning.reason}", err=True)
    first = report.first_problem
    if first is not None:
        typer.echo(f"ledger verify FAILED: first bad index {first.index}: {first.reason}", err=True)
        raise typer.Exit(1)


@ledger_app.command()
def checkpoint(
    db: DbOption = None,
    size: Annotated[int | None, typer.Option(help="The checkpoint of this tree size (default: latest).")] = None,
) -> None:
    """Print the latest (or a given size's) signed checkpoint note."""
    with _ledger(db) as ledger:
        note = ledger.latest_checkpoint() if size is None else ledger.checkpoint_at(size)
    if note is None:
        typer.echo(f"error: no checkpoint of size {size} was signed", err=True)
        raise typer.Exit(2)
    typer.echo(note, nl=False)


@ledger_app.command()
def prove(
    index: Annotated[int, typer.Option("--index", help="Leaf index of the entry.")],
    size: Annotated[int | None, typer.Option("--size", help="Tree size (default: current).")] = None,
    db: DbOption = None,
) -> None:
    """Inclusion proof of entry INDEX in the tree of SIZE, with that tree's root."""
    with _ledger(db) as ledger:
        _emit(_prove(ledger, index, size))


def _prove(ledger: Ledger, index: int, size: int | None) -> dict[str, Any]:
    tree_size = ledger.size() if size is None else size
    proof = ledger.inclusion_proof(index, tree_size)
    entry = ledger.entry(index)
    return {
        "index": index,
        "tree_size": tree_size,
        "leaf_hash": _b64(entry.leaf_hash),
        "root_hash": _b64(ledger.root_at(tree_size)),
        "inclusion_proof": [_b64(h) for h in proof],
        "checkpoint": ledger.checkpoint_at(tree_size),
    }


@ledger_app.command()
def consistency(
    size1: Annotated[int, typer.Option("--from", help="The older tree size.")],
    size2: Annotated[int, typer.Option("--to", help="The newer tree size.")],
    db: DbOption = None,
) -> None:
    """Consistency proof that the tree of size --to extends the one of size --from."""
    with _ledger(db) as ledger:
        proof = ledger.consistency_proof(size1, size2)
        _emit(
            {
                "size1": size1,
                "size2": size2,
                "root1": _b64(ledger.root_at(size1)),
                "root2": _b64(ledger.root_at(size2)),
                "consistency_proof": [_b64(h) for h in proof],
            }
        )


@ledger_app.command()
def key(db: DbOption = None) -> None:
    """Print the log's C2SP verifier key (publish it; buyers check checkpoints with it)."""
    with _ledger(db) as ledger:
        typer.echo(ledger.verifier_key)


@ledger_app.command()
def history(item: Annotated[str, typer.Argument(help="Item id.")], db: DbOption = None) -> None:
    """Every entry of ITEM in log order (each one's prev is the previous one's leaf hash); exit 2
    when the log holds no entry for ITEM (the API answers 404)."""
    with _ledger(db) as ledger:
        entries = [_entry_json(e) for e in ledger.history(item)]
    if not entries:
        typer.echo(f"error: the log holds no entry for item {item}", err=True)
        raise typer.Exit(2)
    _emit({"item": item, "entries": entries})
