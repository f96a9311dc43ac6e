"""Where training looks by default, and how it writes paths down: relative to the checkout.

What training writes for others to read (the model card's ``reproduce`` line, the report,
docs/vision-thresholds.md) names files relative to the repository root, never the absolute
folders of the machine that ran it, so that the command can be rerun from any checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from authenticator.config import REPO_ROOT

#: The development photos, beside the checkout: ``../shared/data/real``.
DEV_DATA = REPO_ROOT.parent / "shared" / "data" / "real"
DEV_MANIFEST = DEV_DATA / "manifest.csv"
#: Recognition-only photos (watches: "this is a watch", never a watch verdict): ``../shared/data/watches``.
DEV_RECOGNITION_MANIFEST = REPO_ROOT.parent / "shared" / "data" / "watches" / "manifest.csv"


def portable(path: str | os.PathLike[str]) -> str:
    """``path`` as written for a reader of another checkout: relative to the repository root (in
    POSIX form, ``../`` for the folders beside it) when it lies in or beside the checkout, as given
    otherwise. Relative paths are taken as relative to the working directory."""
    absolute = Path(os.path.abspath(path))
    if not absolute.is_relative_to(REPO_ROOT.parent):
        return os.fspath(path)
    return Path(os.path.relpath(absolute, REPO_ROOT)).as_posix()
