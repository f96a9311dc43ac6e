"""A diagnostic server for bench/serving.py, never for production: ``authenticator serve`` with each
photo's decode, quality gate, perceptual hash and resize to the network input done once per
distinct photo bytes, then reused. Not a test.

bench/serving.py sends the same 4 photos in every request, so this server pays for the model run
(every photo still runs through onnxruntime), HTTP, the log, the projections and the category
check, but not for the photo checks: its throughput is the ceiling the API could reach against the
inference-only limit if those checks cost nothing. It says which part of the gap is the photo
checks and which is the rest.

Usage: ``.venv/bin/python bench/memoized_checks_serve.py serve --port N`` (the CLI's arguments).
"""

from __future__ import annotations

import copy
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from authenticator.vision import service


def memoize_photo_checks() -> None:
    """Replace ``Assessor._decode_and_gate`` with a version that computes each distinct photo once.

    The cached per-photo state is copied for every request (the result is mutated later: the logit,
    the category and the reasons are added), so each request still builds its own answer."""
    original = service.Assessor._decode_and_gate
    done: dict[bytes, Any] = {}
    lock = threading.Lock()

    def decode_and_gate_once(self: service.Assessor, photo: service.PhotoInput) -> Any:
        with lock:
            work = done.get(photo.data)
        if work is None:
            work = original(self, photo)
            with lock:
                done[photo.data] = work
        fresh = copy.copy(work)
        fresh.result = work.result.model_copy(deep=True)
        return fresh

    service.Assessor._decode_and_gate = decode_and_gate_once  # type: ignore[method-assign]


if __name__ == "__main__":
    memoize_photo_checks()
    from authenticator.cli import app

    sys.argv[0] = "authenticator"
    sys.exit(app())
