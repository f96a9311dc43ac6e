"""What the repository ships names no folder of the machine that wrote it (issue 16, point 6).

The model card's ``reproduce`` line, the training report and the bench results are read on other
machines: a path such as ``/work/main/../shared`` is meaningless there and leaks where we built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from training.cli import reproduce_command

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    p
    for folder in ("weights", "bench/results")
    for p in (REPO / folder).rglob("*")
    if p.is_file() and p.suffix in {".json", ".md", ".csv", ".txt"}
)
# An absolute POSIX path of a build machine: /work/..., /home/..., /tmp/..., /root/..., /Users/...
MACHINE_PATH = re.compile(r"(?<![\w.:/])/(?:work|home|tmp|root|Users|var/folders)/[\w.-]")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_artifact_names_no_machine_folder(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    found = MACHINE_PATH.findall(text)
    assert not found, f"{path.relative_to(REPO)} names an absolute folder of the machine that wrote it: {found[:3]}"


def test_the_card_reproduce_line_is_relative_to_the_checkout() -> None:
    card = json.loads((REPO / "weights" / "authenticator.card.json").read_text())
    assert card["reproduce"].startswith("python -m training ")
    assert "../shared/data/real/manifest.csv" in card["reproduce"]


def test_reproduce_command_rewrites_absolute_arguments() -> None:
    line = reproduce_command(
        ["train", f"--manifest={REPO}/../shared/data/real/manifest.csv", "--out", str(REPO / "weights")]
    )
    assert line == "python -m training train --manifest=../shared/data/real/manifest.csv --out weights"
    assert not MACHINE_PATH.search(line)


def test_the_pattern_catches_what_it_must() -> None:
    assert MACHINE_PATH.search('"reproduce": "python -m training train --manifest /work/main/../shared/x.csv"')
    assert MACHINE_PATH.search("results in /tmp/tmpab12/bench")
    assert not MACHINE_PATH.search("see https://example.org/work/x and ../shared/data and <tmp>/bench")
