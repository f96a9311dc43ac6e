"""``authenticator lab``: everything an appraisal lab needs: a key pair and signed certificates.

``keygen`` writes an Ed25519 private key (PEM, mode 0600) and prints the public key to register
with the operator. ``sign`` builds the certificate payload (RFC 8785 canonical JSON), signs it
as a DSSE envelope and writes it, or posts it to the API with the lab's API key. ``revoke``
withdraws a certificate the lab issued (``certificate.revoked``), with the reason buyers read.
See docs/certificates.md for the format.

When the server refuses (``--url``), the command prints one ``error:`` line with the problem's
title and detail on stderr: exit 1 for 409 (the log already holds it: a certificate attached or
revoked before, which a retrying script may take as done), exit 2 for anything else (a wrong
key, an unknown id, a refused input, a server error), as every command's errors.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from authenticator.dsse import keyid_for, sign_envelope
from authenticator.errors import InvalidInput
from authenticator.services.certificate_payload import check_payload
from authenticator.text import check_free_text

if TYPE_CHECKING:
    import httpx

lab_app = typer.Typer(help="Lab tooling: key pairs and signed certificates.", no_args_is_help=True)


def _server_answer(response: httpx.Response, ok: tuple[int, ...]) -> None:
    """The answer on stdout when it is one of ``ok``; else one ``error:`` line from the problem
    (exit 1 for a 409 conflict with what the log holds, 2 otherwise)."""
    if response.status_code in ok:
        typer.echo(response.text)
        return
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if isinstance(problem, dict) and (problem.get("title") or problem.get("detail")):
        said = ": ".join(str(problem[k]) for k in ("title", "detail") if problem.get(k))
    else:
        said = response.text.strip()[:200] or response.reason_phrase
    said = " ".join(said.split())
    typer.echo(f"error: the server answered {response.status_code}: {said}", err=True)
    raise typer.Exit(1 if response.status_code == 409 else 2)


@lab_app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Private key file to create (mode 0600).")] = Path("lab.key"),
) -> None:
    """Create an Ed25519 key pair (OUT and OUT with the suffix .pub); prints the public key (base64,
    raw 32 bytes) to register. Never overwrites either file."""
    pub_path = out.with_suffix(".pub")
    if out.suffix == ".pub" or pub_path == out:  # the public key would overwrite the private one
        typer.echo(
            f"error: {out} ends in .pub, the name of the public key written next to the private key; "
            "name the private key file otherwise (e.g. lab.key)",
            err=True,
        )
        raise typer.Exit(2)
    if pub_path.exists() or pub_path.is_symlink():
        typer.echo(f"error: {pub_path} exists; refusing to overwrite a public key (choose another --out)", err=True)
        raise typer.Exit(2)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        typer.echo(f"error: {out} exists; refusing to overwrite a key", err=True)
        raise typer.Exit(2) from exc
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(pem)
    public = key.public_key()
    raw = base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")
    with pub_path.open("x") as f:  # exclusive too: never another key's public half
        f.write(raw + "\n")
    typer.echo(
        json.dumps(
            {"private_key": str(out), "public_key": raw, "public_key_file": str(pub_path), "keyid": keyid_for(public)}
        )
    )


def _looks_like_public_key(data: bytes) -> bool:
    """The ``.pub`` file keygen writes (base64 of 32 raw bytes) or a PEM public key."""
    text = data.strip()
    if b"PUBLIC KEY" in text:
        return True
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except ValueError:
        return False


def _load_key(path: Path) -> Ed25519PrivateKey:
    """The lab's private key, or a one-line error naming what is wrong with the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint="--key") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if _looks_like_public_key(data):
            raise typer.BadParameter(
                f"{path} holds a public key. Sign with the lab's private key: the file `authenticator lab keygen "
                "--out FILE` wrote (e.g. lab.key), not the .pub file next to it.",
                param_hint="--key",
            ) from None
        raise typer.BadParameter(
            f"{path} is not an unencrypted PEM private key (the file `authenticator lab keygen` writes).",
            param_hint="--key",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise typer.BadParameter(f"{path} is not an Ed25519 private key", param_hint="--key")
    return key


def _sha256_file(path: Path, option: str = "--photos") -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint=option) from None


def build_payload(
    item_id: str,
    lab_id: str,
    outcome: str,
    method: str,
    inspection_date: str,
    photos: list[Path],
    report: Path | None,
) -> dict[str, Any]:
    """The certificate payload: hashes of the lab's photos and report, never the files."""
    return {
        "v": 1,
        "item_id": item_id,
        "lab_id": lab_id,
        "outcome": outcome,
        "inspection_date": inspection_date,
        "method": method,
        "photos": [_sha256_file(p) for p in photos],
        "report_sha256": _sha256_file(report, "--report") if report is not None else None,
    }


@lab_app.command("sign")
def sign(
    item_id: Annotated[str, typer.Argument(help="The item's id (itm_…).")],
    outcome: Annotated[str, typer.Option(help="authentic or counterfeit.")],
    method: Annotated[str, typer.Option(help="How the item was inspected.")],
    key: Annotated[Path, typer.Option("--key", help="The lab's Ed25519 private key (PEM).")],
    lab_id: Annotated[str, typer.Option("--lab-id", help="The lab's id, as registered (lab_…).")],
    photos: Annotated[
        list[Path] | None, typer.Option("--photos", help="A photo taken by the lab (repeatable).")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="The inspection report file.")] = None,
    inspection_date: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: today).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the envelope here (default: stdout).")] = None,
    url: Annotated[str | None, typer.Option("--url", help="API base URL: post the certificate there.")] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="AUTHENTICATOR_API_KEY", help="The lab's key.")
    ] = None,
) -> None:
    """Sign a certificate for ITEM_ID as a DSSE envelope; write it, or post it with --url.

    Exit 1 when the server answers 409 (this certificate is attached already), 2 for any other
    refusal (wrong key, unknown item, refused input)."""
    if outcome not in ("authentic", "counterfeit"):
        raise typer.BadParameter("outcome must be authentic or counterfeit")
    when = inspection_date or date.today().isoformat()
    payload = build_payload(item_id, lab_id, outcome, method, when, list(photos or []), report)
    try:
        check_payload(payload)  # the service's own rules: refuse here what it would refuse
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message) from None
    envelope = sign_envelope(payload, _load_key(key))
    text = json.dumps(envelope, indent=2)
    if out is not None:
        out.write_text(text + "\n")
    if url is None:
        if out is None:
            typer.echo(text)
        return
    if not api_key:
        raise typer.BadParameter("--api-key (or AUTHENTICATOR_API_KEY) is needed with --url")
    import httpx

    response = httpx.post(
        f"{url.rstrip('/')}/v1/items/{item_id}/certificates",
        content=json.dumps(envelope).encode("utf-8"),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        timeout=30.0,
    )
    _server_answer(response, (201,))


@lab_app.command("revoke")
def revoke(
    certificate_id: Annotated[str, typer.Argument(help="The certificate id, as answered when it was attached.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, in words buyers read on the item's page.")],
    url: Annotated[str, typer.Option("--url", help="API base URL, e.g. https://auth.example.com.")],
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="AUTHENTICATOR_API_KEY", help="The lab's key.")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Makes a retry safe (default: a fresh one per run).")
    ] = None,
) -> None:
    """Revoke a certificate this lab issued: appends `certificate.revoked` with the reason.

    The item's badge turns to a warning until a new certificate is attached (issue one with
    `lab sign`; a certificate attached after the revocation replaces it). Exit 1 when the server
    answers 409 (revoked already), 2 for any other refusal (wrong key, unknown certificate)."""
    import uuid

    import httpx

    if not api_key:
        raise typer.BadParameter("--api-key (or AUTHENTICATOR_API_KEY) is needed", param_hint="--api-key")
    try:
        check_free_text(reason, "reason")
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message, param_hint="--reason") from None
    if not reason.strip():
        raise typer.BadParameter("give the reason buyers will read", param_hint="--reason")
    response = httpx.post(
        f"{url.rstrip('/')}/v1/certificates/{quote(certificate_id, safe='')}/revocation",
        content=json.dumps({"reason": reason}).encode("utf-8"),
        headers={
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
        },
        timeout=30.0,
    )
    _server_answer(response, (200, 201))
