"""Display names of the principals the log refers to by id (platforms), for pages people read.

The log names a platform by its principal id (``plt_…``); a buyer should read the name the
operator registered it under (``app_principals.name``). Names are not part of the log: a page
shows them next to the facts the log proves, never instead of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from authenticator.db import read_tx
from authenticator.services.context import ServiceContext
from authenticator.store.tables import principals


def display_names(ctx: ServiceContext, principal_ids: Iterable[str]) -> dict[str, str]:
    """``{id: name}`` for the ids that are registered principals (unknown ids are left out)."""
    wanted = sorted({str(i) for i in principal_ids})
    if not wanted:
        return {}
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(select(principals.c.id, principals.c.name).where(principals.c.id.in_(wanted))).all()
    return {str(r.id): str(r.name) for r in rows}
