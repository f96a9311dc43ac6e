"""``ledger verify``'s checkpoint checks: each stored note's signature, and the root it signs
against the stored tree.

A log commits a checkpoint per write group, so a log written by many small groups holds about as
many checkpoints as it holds thousands of entries. Checked one after another (a new connection
and one node read per root, each signature in the verifying thread) ~1,000 checkpoints took a
quarter of a hash-only verify of a 200,000-entry log. Here the signatures are checked on threads
of their own while the hash pass runs (cryptography's Ed25519 verify releases the GIL, so they use
the other cores), and the roots of a page of checkpoints come from one read of the nodes they need.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authenticator.errors import AuthenticatorError
from authenticator.ledger.checkpoint import Checkpoint, verify_checkpoint
from authenticator.ledger.proofplan import materialise, plan_nodes, root_plan
from authenticator.ledger.tree import fold_nodes

if TYPE_CHECKING:
    from authenticator.ledger.log import Ledger
    from authenticator.ledger.verify import VerifyReport

#: Checkpoints per page: read, signature-checked and root-checked together. A log written by small
#: groups can hold a checkpoint per entry; pages keep what verify holds of them bounded.
STEP = 4096
#: Pages read, and their signatures given to the threads, before the hash pass: the checks of the
#: first ``AHEAD * STEP`` checkpoints overlap it; later pages are read one ahead of their check.
AHEAD = 4
#: Signatures per task: a page's signatures are checked by every signature thread at once.
SIGNATURES_PER_TASK = 512


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str


def _open_notes(notes: Sequence[str], opener: Callable[[str], Checkpoint]) -> list[Checkpoint | str]:
    """Each note opened, or the reason it does not verify."""
    out: list[Checkpoint | str] = []
    for note in notes:
        try:
            out.append(opener(note))
        except AuthenticatorError as exc:
            out.append(exc.message)
    return out


class CheckpointChecks:
    """Made before the hash pass (the first pages of stored checkpoints are read, and their
    signatures checked meanwhile on a thread), finished after it, then closed (which cancels what
    is left)."""

    def __init__(self, ledger: Ledger, cur: Any, verifier_key: str | None) -> None:
        self.ledger = ledger
        key, origin = (ledger.verifier_key, ledger.origin) if verifier_key is None else (verifier_key, None)
        self._opener: Callable[[str], Checkpoint] = lambda note: verify_checkpoint(note, key, origin)
        self._query = (
            "SELECT size, root_hash, note FROM log_checkpoints "
            f"WHERE size > {ledger._ops.placeholder()} ORDER BY size LIMIT {STEP}"
        )
        self._after = -1
        self._read_all = False
        self._pages: deque[tuple[list[StoredCheckpoint], list[Future[list[Checkpoint | str]]]]] = deque()
        # one thread per core: the verifying thread mostly waits for them once its hash pass is done
        threads = max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="verify-signatures")
        for _ in range(AHEAD):
            self._read_page(cur)

    def _read_page(self, cur: Any) -> None:
        """The next page of checkpoints (by size), its signatures given to the thread."""
        if self._read_all:
            return
        page = [StoredCheckpoint(int(s), bytes(r), str(n)) for s, r, n in cur.execute(self._query, (self._after,))]
        self._read_all = len(page) < STEP
        if page:
            self._after = page[-1].size
            notes = [c.note for c in page]
            tasks = [
                self._pool.submit(_open_notes, notes[k : k + SIGNATURES_PER_TASK], self._opener)
                for k in range(0, len(notes), SIGNATURES_PER_TASK)
            ]
            self._pages.append((page, tasks))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def finish(self, cur: Any, report: VerifyReport, size: int) -> None:
        """Report every checkpoint that lies beyond the log, does not verify, disagrees with its
        stored row, or signs a root the stored tree does not have; and a latest checkpoint that
        is not of the log's size."""
        latest = -1
        while self._pages:
            self._read_page(cur)  # one page ahead: its signatures are checked while this one's roots are
            page, tasks = self._pages.popleft()
            opened = [cp for task in tasks for cp in task.result()]
            roots = self._roots(cur, [c.size for c in page if c.size <= size])
            for stored, cp in zip(page, opened, strict=True):
                report.checkpoints_checked += 1
                latest = max(latest, stored.size)
                problem = _problem(stored, cp, size, roots.get(stored.size))
                if problem:
                    report.add(max(stored.size - 1, 0), f"checkpoint of size {stored.size}{problem}")
        if latest != size:
            report.add(max(size - 1, 0), f"the latest checkpoint is of size {latest} but the log has {size} entries")

    def _roots(self, cur: Any, sizes: Sequence[int]) -> dict[int, bytes | str]:
        """The stored tree's root at each size, from one read of the nodes they need; where a node
        is missing, the reason from :meth:`Ledger.root_at`."""
        plans = {s: root_plan(s) for s in sizes}
        nodes = self.ledger._ops.get_nodes(cur, list(dict.fromkeys(n for p in plans.values() for n in plan_nodes(p))))
        out: dict[int, bytes | str] = {}
        for s, plan in plans.items():
            try:
                out[s] = materialise(plan, nodes)[0] if plan else fold_nodes([])
            except KeyError:
                try:
                    out[s] = self.ledger.root_at(s)  # names the missing node
                except AuthenticatorError as exc:
                    out[s] = exc.message
        return out


def _problem(stored: StoredCheckpoint, cp: Checkpoint | str, size: int, root: bytes | str | None) -> str | None:
    """What is wrong with one checkpoint (the rest of the report's sentence after "checkpoint of
    size N"), or None."""
    if stored.size > size:
        return f" is beyond the log of {size} entries"
    if isinstance(cp, str):
        return f" does not verify: {cp}"
    if cp.size != stored.size or cp.root_hash != stored.root_hash:
        return ": the stored size or root differs from the signed note"
    if isinstance(root, str):
        return f": cannot compute the root: {root}"
    if root != cp.root_hash:
        return " signs a root that the stored tree does not have"
    return None
