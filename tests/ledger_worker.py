"""A writer process for the concurrency and crash tests.

``python -m tests.ledger_worker URL KEY ORIGIN WORKER TOTAL MAX_BATCH`` appends TOTAL entries
(forever when TOTAL < 0) in batches of 1..MAX_BATCH on ten items shared by every worker, and
prints one JSON line per receipt as soon as ``append_batch`` has returned it.
"""

from __future__ import annotations

import base64
import json
import random
import sys
from pathlib import Path

from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.ledger.log import Ledger
from tests.ledger_samples import sample_entry


def main(argv: list[str]) -> None:
    url, key, origin, worker, total, max_batch = argv
    wid, n_total, n_batch = int(worker), int(total), int(max_batch)
    rng = random.Random(wid)
    ledger = Ledger.open(url, CheckpointSigner.load_or_create(Path(key), origin))
    done = 0
    while n_total < 0 or done < n_total:
        k = rng.randint(1, n_batch)
        if n_total >= 0:
            k = min(k, n_total - done)
        # Bodies differ per worker; items are shared, so the item chains interleave.
        entries = [sample_entry(wid * 1_000_000 + done + j, f"shared-{(done + j) % 10}") for j in range(k)]
        lines = [
            json.dumps({"index": r.index, "leaf_hash": base64.b64encode(r.leaf_hash).decode(), "size": r.tree_size})
            for r in ledger.append_batch(entries)
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        done += k
    ledger.close()


if __name__ == "__main__":
    main(sys.argv[1:])
