"""API keys: random, shown once, stored as the SHA-256 of their secret, compared in constant time.

A key reads ``<key id>.<secret>``; the id finds the row, the secret's hash is compared with
:func:`hmac.compare_digest`. 256 random bits make a plain SHA-256 as strong as a slow KDF.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, insert, select, update

from authenticator.db import read_tx, utc_now, write_tx
from authenticator.errors import AuthenticationError, InvalidInput, NotFound
from authenticator.store.tables import api_keys, principals

Role = Literal["admin", "platform", "lab"]
ROLES: tuple[Role, ...] = ("admin", "platform", "lab")
_PREFIX: dict[str, str] = {"admin": "adm", "platform": "plt", "lab": "lab"}
_KEY_RE = re.compile(r"(key_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})")
_DUMMY_HASH = hashlib.sha256(b"no such key").digest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the principal (an operator, a platform or a lab) and the key used."""

    id: str
    role: Role
    key_id: str


@dataclass(frozen=True)
class IssuedKey:
    principal_id: str
    role: Role
    key_id: str
    api_key: str
    """The full key: shown once, never stored."""


def new_id(prefix: str) -> str:
    """An opaque random id such as ``itm_3f9a…`` (96 random bits)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def _check_role(role: str) -> Role:
    for r in ROLES:
        if r == role:
            return r
    raise InvalidInput(f"role must be one of {', '.join(ROLES)}", role=role)


def _secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def create_principal(engine: Engine, role: str, name: str, principal_id: str | None = None) -> str:
    """Register an operator, platform or lab (labs pass their own id); return its id."""
    with write_tx(engine) as conn:
        return insert_principal(conn, role, name, principal_id)


def insert_principal(conn: Connection, role: str, name: str, principal_id: str | None = None) -> str:
    """:func:`create_principal` in the caller's transaction."""
    checked = _check_role(role)
    pid = principal_id or new_id(_PREFIX[checked])
    conn.execute(insert(principals).values(id=pid, role=checked, name=name, created_at=utc_now()))
    return pid


def issue_key(engine: Engine, principal_id: str) -> IssuedKey:
    """A new key for an existing principal; the returned ``api_key`` is never shown again."""
    with write_tx(engine) as conn:
        return issue_key_in(conn, principal_id)


def issue_key_in(conn: Connection, principal_id: str) -> IssuedKey:
    """:func:`issue_key` in the caller's transaction (the principal may be new in it)."""
    key_id = f"key_{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    row = conn.execute(select(principals.c.role).where(principals.c.id == principal_id)).first()
    if row is None:
        raise NotFound(f"no principal {principal_id}")
    role = _check_role(row.role)
    conn.execute(
        insert(api_keys).values(
            id=key_id,
            principal_id=principal_id,
            role=role,
            secret_sha256=_secret_hash(secret),
            created_at=utc_now(),
        )
    )
    return IssuedKey(principal_id=principal_id, role=role, key_id=key_id, api_key=f"{key_id}.{secret}")


def first_key_id(conn: Connection, principal_id: str) -> str | None:
    """The id of the principal's first key (the one its registration answered)."""
    row = conn.execute(
        select(api_keys.c.id)
        .where(api_keys.c.principal_id == principal_id)
        .order_by(api_keys.c.created_at, api_keys.c.id)
        .limit(1)
    ).first()
    return None if row is None else str(row.id)


def create_key(engine: Engine, role: str, name: str) -> IssuedKey:
    """A new principal of ``role`` with its first key (``authenticator keys create``), in one
    transaction."""
    with write_tx(engine) as conn:
        return issue_key_in(conn, insert_principal(conn, role, name))


def revoke_key(engine: Engine, key_id: str) -> None:
    with write_tx(engine) as conn:
        done = conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        )
        if done.rowcount == 0:
            raise NotFound(f"no active key {key_id}")


def authenticate(engine: Engine, presented: str) -> Principal:
    """The principal of a presented key; :class:`AuthenticationError` for any mismatch."""
    match = _KEY_RE.fullmatch(presented.strip())
    key_id, secret = (match.group(1), match.group(2)) if match else ("", "x" * 43)
    with read_tx(engine) as conn:
        row = conn.execute(
            select(api_keys.c.principal_id, api_keys.c.role, api_keys.c.secret_sha256, api_keys.c.revoked_at).where(
                api_keys.c.id == key_id
            )
        ).first()
    stored = bytes(row.secret_sha256) if row is not None else _DUMMY_HASH
    ok = hmac.compare_digest(stored, _secret_hash(secret))
    if not ok or row is None or match is None or row.revoked_at is not None:
        raise AuthenticationError("the API key is not valid")
    return Principal(id=row.principal_id, role=_check_role(row.role), key_id=key_id)


def list_keys(engine: Engine) -> list[dict[str, str | None]]:
    """Key ids, roles and owners (never secrets), for ``authenticator keys list``."""
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(
                api_keys.c.id, api_keys.c.role, api_keys.c.principal_id, api_keys.c.created_at, api_keys.c.revoked_at
            ).order_by(api_keys.c.created_at)
        ).all()
    return [
        {
            "key_id": r.id,
            "role": r.role,
            "principal_id": r.principal_id,
            "created_at": r.created_at,
            "revoked_at": r.revoked_at,
        }
        for r in rows
    ]
