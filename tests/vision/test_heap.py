"""Freed heap goes back to the operating system after a model loads (authenticator/vision/heap.py)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from authenticator.vision.heap import release_freed_heap

REPO = Path(__file__).resolve().parents[2]
glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024


@glibc_only
def test_freed_pages_below_a_live_allocation_are_returned() -> None:
    # 200 MB of small blocks (malloc's heap, not mmap), then one block above them: freeing the
    # 200 MB leaves them mapped, since glibc only shrinks the heap from its top by itself
    blocks = [bytearray(2048) for _ in range(100_000)]
    pin = bytearray(2048)
    held = resident_mb()
    del blocks
    assert resident_mb() > held - 50, "glibc returned the pages by itself: this test proves nothing here"
    assert release_freed_heap() is True
    assert resident_mb() < held - 150
    assert len(pin) == 2048


LOAD = """
import json, sys
from pathlib import Path
from authenticator.config import Settings
from authenticator.vision import service
if sys.argv[1] == "keep":
    service.release_freed_heap = lambda: False
service.Assessor.from_settings(Settings(weights_dir=Path("weights")))
status = Path("/proc/self/status").read_text()
print(json.dumps(int(next(l for l in status.splitlines() if l.startswith("VmRSS")).split()[1]) / 1024))
"""


def _resident_after_load(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", LOAD, mode], cwd=REPO, check=True, capture_output=True, text=True, timeout=300
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


@glibc_only
def test_loading_the_shipped_model_hands_back_the_pages_it_freed() -> None:
    # the load builds two onnxruntime sessions and keeps one (OnnxModel): the other one's memory
    # and the temporaries are freed; measured 42 MB less resident with the pages handed back
    kept = _resident_after_load("keep")
    released = _resident_after_load("release")
    assert released < kept - 15, (released, kept)
