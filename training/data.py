"""Datasets are manifests: one row per photo (path, label, category, brand, item_group, source).

Photos are always read through :func:`authenticator.vision.decode.decode_image`, the function the
service uses, so training sees exactly the pixels serving sees.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from authenticator.vision.decode import DecodedImage, DecodeLimits, decode_image, model_decode_size
from authenticator.vision.preprocess import PreprocessSpec, preprocess

LABELS = ("authentic", "counterfeit")
#: Manifest columns kept in ``Sample.extra``: provenance, the model line (``model``), a frozen fold
#: (``fold``, the model lifecycle's evaluation split) and the lab of a certified item (``lab_id``).
EXTRA_COLUMNS = ("license", "sha256", "source_repo", "model", "fold", "lab_id")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}
# Training reads trusted files: keep the pixel limit but allow large originals.
TRAIN_LIMITS = DecodeLimits(max_bytes=200 * 1024 * 1024, max_megapixels=80.0, min_short_side=32)


@dataclass(frozen=True)
class Sample:
    """One labelled photo. ``y`` is 1 for authentic (positive logit = authentic)."""

    path: Path
    label: str
    category: str
    item_group: str
    source: str
    brand: str = ""
    width: int = 0
    height: int = 0
    synthetic: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def y(self) -> int:
        return 1 if self.label == "authentic" else 0


def read_manifest(manifest: Path, root: Path | None = None) -> list[Sample]:
    """Read a manifest CSV (paths relative to ``root``, default: the manifest's folder).

    ``source`` is taken from a ``source`` column, else the first path component (the shared
    data set's ``<source-slug>/<label>/<file>`` layout).
    """
    root = root or manifest.parent
    out: list[Sample] = []
    with manifest.open(newline="") as f:
        for row in csv.DictReader(f):
            label = row["label"].strip().lower()
            if label not in LABELS:
                raise ValueError(f"{manifest}: unknown label {label!r} for {row['path']}")
            rel = row["path"]
            source = (row.get("source") or "").strip() or _source_from_path(Path(rel))
            out.append(
                Sample(
                    path=root / rel,
                    label=label,
                    category=(row.get("category") or "other").strip() or "other",
                    item_group=(row.get("item_group") or "").strip() or Path(rel).stem,
                    source=source,
                    brand=(row.get("brand") or "").strip(),
                    width=int(row.get("width") or 0),
                    height=int(row.get("height") or 0),
                    extra={k: v for k, v in row.items() if k in EXTRA_COLUMNS and v},
                )
            )
    return out


def _source_from_path(rel: Path) -> str:
    """``<source>/<label>/<file>`` -> source; an absolute path -> the folder above its label folder."""
    if not rel.is_absolute():
        return rel.parts[0]
    return rel.parent.parent.name if rel.parent.name in LABELS else rel.parent.name


def read_folder(root: Path, category: str = "other", source: str | None = None) -> list[Sample]:
    """Read ``<root>/<label>/<files>``; each file is its own item group (no grouping known)."""
    out: list[Sample] = []
    src = source or root.name
    for label in LABELS:
        d = root / label
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                out.append(
                    Sample(path=p, label=label, category=category, item_group=f"{src}:{label}:{p.stem}", source=src)
                )
    if not out:
        raise ValueError(f"no photos found under {root}/{{authentic,counterfeit}}/")
    return out


def load_samples(path: Path, category: str = "other") -> list[Sample]:
    """A manifest CSV or a ``<root>/<label>/`` folder."""
    return read_manifest(path) if path.is_file() else read_folder(path, category=category)


def decode_sample(sample: Sample) -> DecodedImage:
    return decode_image(sample.path.read_bytes(), TRAIN_LIMITS)


def write_manifest(samples: list[Sample], manifest: Path, root: Path | None = None) -> None:
    """Write samples as a manifest (paths relative to ``root``, default the manifest's folder)."""
    root = root or manifest.parent
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "category", "brand", "item_group", "source", "width", "height"])
        for s in samples:
            w.writerow(
                [
                    s.path.relative_to(root).as_posix(),
                    s.label,
                    s.category,
                    s.brand,
                    s.item_group,
                    s.source,
                    s.width,
                    s.height,
                ]
            )


def training_input(data: bytes, spec: PreprocessSpec) -> np.ndarray:
    """The network input for one photo's bytes, decoded and preprocessed exactly as serving does
    (same decoder, same reduced-JPEG decode size for this input size, same preprocess)."""
    d = decode_image(data, TRAIN_LIMITS, reduce_to=model_decode_size(spec.input_size))
    return preprocess(d.rgb, d.alpha, spec)
