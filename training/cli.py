"""``python -m training {train,evaluate,export,calibrate,calibrate-gate,synth,export-dataset,add-recognition,
recognition}``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from training.lifecycle_cli import model_app
from training.paths import DEV_DATA, DEV_MANIFEST, DEV_RECOGNITION_MANIFEST, portable

app = typer.Typer(
    help="Train, evaluate, calibrate and export the authenticity model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(model_app, name="model")  # the model lifecycle's training side (authenticator model runs it)

#: The development photos' manifest, beside the checkout (``../shared/data/real/manifest.csv``).
DEFAULT_MANIFEST = DEV_MANIFEST


@app.command()
def train(
    manifest: Annotated[
        Path,
        typer.Option(
            help="Manifest CSV (path,label,category,brand,item_group,...) or a <root>/<label>/<files> folder.",
            show_default=portable(DEFAULT_MANIFEST),
        ),
    ] = DEFAULT_MANIFEST,
    out: Annotated[
        Path, typer.Option(help="Output folder for <name>.onnx, <name>.card.json, the bank and report/.")
    ] = Path("weights"),
    name: Annotated[
        str, typer.Option(help="Model name (file stem); the service loads settings.model_name.")
    ] = "authenticator",
    approach: Annotated[list[str] | None, typer.Option(help="Approaches to compare (repeat); default: all.")] = None,
    ship: Annotated[
        str | None,
        typer.Option(
            help="Ship this approach instead of the automatic choice (lowest worst-source false-pass at 30% coverage)."
        ),
    ] = None,
    folds: Annotated[int, typer.Option(help="Item-grouped CV folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for folds and heads.")] = 0,
    cache: Annotated[Path, typer.Option(help="Where frozen-backbone features are cached (git-ignored).")] = Path(
        "training/runs/cache"
    ),
    max_false_pass: Annotated[float, typer.Option(help="Per-source bound on held-out counterfeits passed.")] = 0.01,
    max_false_reject: Annotated[float, typer.Option(help="Per-source bound on held-out authentics rejected.")] = 0.05,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples (item groups) for 95% intervals.")] = 500,
    category: Annotated[str, typer.Option(help="Category for a folder dataset (manifests carry their own).")] = "other",
    report: Annotated[bool, typer.Option(help="Write <out>/report/ (report.json, report.md, plots).")] = True,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
    quantize: Annotated[
        str,
        typer.Option(help="int8: ship the INT8 graph, with head and metrics fitted on its embeddings; none: float."),
    ] = "int8",
    calibration: Annotated[str, typer.Option(help="INT8 activation-range calibration: percentile or minmax.")] = (
        "percentile"
    ),
    calibration_photos: Annotated[int, typer.Option(help="Development photos used to calibrate INT8 ranges.")] = 64,
    recognition: Annotated[
        Path | None,
        typer.Option(
            help="Manifest of recognition-only photos for the reference bank's category vote (make weights: "
            "../shared/data/watches/manifest.csv); no verdict is trained on them."
        ),
    ] = None,
) -> None:
    """Cross-validate every approach, ship the chosen one with thresholds fitted on held-out scores."""
    import torch

    from training.data import load_samples
    from training.pipeline import train as run

    torch.set_num_threads(threads)
    samples = load_samples(manifest, category)
    run(
        samples,
        out,
        name=name,
        cache_dir=cache,
        k=folds,
        seed=seed,
        approaches=approach,
        ship=ship,
        max_false_pass=max_false_pass,
        max_false_reject=max_false_reject,
        bootstrap_reps=bootstrap,
        quantize=quantize,
        calibration_method=calibration,
        calibration_photos=calibration_photos,
        report=report,
        reproduce=reproduce_command(sys.argv[1:]),
        recognition=None if recognition is None else load_samples(recognition),
    )


def reproduce_command(argv: list[str]) -> str:
    """The command line as the card records it: paths in or beside the checkout written relative to
    the repository root (where ``python -m training`` runs), never the absolute folders of this machine."""
    words = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if eq and flag.startswith("--"):
            words.append(f"{flag}={_portable_word(value)}")
        else:
            words.append(_portable_word(arg))
    return "python -m training " + " ".join(shlex.quote(w) for w in words)


def _portable_word(word: str) -> str:
    return portable(word) if Path(word).is_absolute() else word


@app.command()
def evaluate(
    manifest: Annotated[Path, typer.Option(help="Manifest CSV or <root>/<label>/ folder to score.")],
    card: Annotated[Path, typer.Option(help="Model card of the model to evaluate.")] = Path(
        "weights/authenticator.card.json"
    ),
    out: Annotated[Path | None, typer.Option(help="Write per-photo scores (CSV) and metrics (JSON) here.")] = None,
    category: Annotated[str, typer.Option(help="Category for a folder dataset.")] = "other",
) -> None:
    """Score a labelled set with the shipped ONNX model (no torch): AUROC, false-pass, coverage per source."""
    from training.data import load_samples
    from training.onnx_eval import evaluate_card

    res = evaluate_card(card, load_samples(manifest, category), out)
    for s, v in res["per_source"].items():
        typer.echo(
            f"{s:24s} n={v['n']:5d} AUROC={v['auroc']} false-pass={v['false_pass_rate']} coverage={v['coverage']}"
            f" unfamiliar={v['unfamiliar_rate']}"
        )


@app.command()
def export(
    head: Annotated[Path, typer.Option(help="Head saved by train (training/runs/<name>.head.npz).")] = Path(
        "training/runs/authenticator.head.npz"
    ),
    out: Annotated[Path, typer.Option(help="ONNX file to write.")] = Path("training/runs/authenticator.onnx"),
) -> None:
    """Re-export the network (backbone + saved linear head) as a float ONNX graph and check
    onnxruntime parity (inspection and parity checks: `train` ships the graph it measured)."""
    import numpy as np

    from training.backbone import load_backbone
    from training.export import export_onnx, parity
    from training.heads import LinearHead
    from training.model import AuthenticatorNet

    z = np.load(head)
    size = int(z["input_size"])
    pool = str(z["pool"]) if "pool" in z else "mean"
    net = AuthenticatorNet(load_backbone(), pool=pool, input_size=size, grid=int(z["grid"]) if "grid" in z else 4)
    net.set_head(LinearHead(z["w"], float(z["b"])))
    export_onnx(net, out, size)
    diff = parity(net, out, np.random.default_rng(0).normal(0, 1, (2, 3, size, size)).astype(np.float32))
    typer.echo(f"wrote {out}; onnxruntime parity max abs diff {diff:.2e}")
    if "int8_features" in z and bool(z["int8_features"]):
        typer.echo(
            "note: this head was fitted on the INT8 graph's embeddings; in this float graph its scores differ "
            "slightly from the shipped model's, and the card's thresholds do not apply to it"
        )
    if diff > 1e-4:
        raise typer.Exit(1)


@app.command()
def calibrate(
    scores: Annotated[
        Path, typer.Option(help="Held-out scores CSV written by train (training/runs/<name>.oof.csv).")
    ] = Path("training/runs/authenticator.oof.csv"),
    card: Annotated[Path, typer.Option(help="Card to update in place (temperature and thresholds).")] = Path(
        "weights/authenticator.card.json"
    ),
    max_false_pass: Annotated[float, typer.Option(help="Per-source bound on held-out counterfeits passed.")] = 0.01,
    max_false_reject: Annotated[float, typer.Option(help="Per-source bound on held-out authentics rejected.")] = 0.05,
    write: Annotated[bool, typer.Option(help="Rewrite the card (otherwise only print).")] = False,
) -> None:
    """Refit temperature and the two thresholds from held-out scores of the shipped model."""
    import csv

    import numpy as np

    from authenticator.vision.card import ModelCard, Thresholds
    from training.metrics import fit_temperature, fit_thresholds, sigmoid

    rows = list(csv.DictReader(scores.open()))
    y = np.array([int(r["y"]) for r in rows])
    z = np.array([float(r["logit"]) for r in rows])
    src = np.array([r["source"] for r in rows])
    t = fit_temperature(y, z)
    hi, lo = fit_thresholds(y, sigmoid(z / t), src, max_false_pass, max_false_reject)
    typer.echo(f"temperature {t:.4f} authentic_above {hi:.5f} counterfeit_below {lo:.5f}")
    if write:
        c = ModelCard.load(card)
        c.temperature = round(t, 6)
        c.thresholds = Thresholds(authentic_above=hi, counterfeit_below=lo)
        card.write_text(c.model_dump_json(indent=2))
        typer.echo(f"updated {card}")


@app.command("calibrate-gate")
def calibrate_gate_cmd(
    data: Annotated[
        Path,
        typer.Option(
            help="Folder with the development photos and their manifest.csv.",
            show_default=portable(DEV_DATA),
        ),
    ] = DEV_DATA,
    sample: Annotated[int | None, typer.Option(help="Use N random photos (default: all).")] = None,
    quantile: Annotated[float, typer.Option(help="Fraction of the development photos each check may fail.")] = 0.002,
    out: Annotated[Path, typer.Option(help="Markdown file to write the thresholds to.")] = Path(
        "docs/vision-thresholds.md"
    ),
) -> None:
    """Choose the quality-gate thresholds on the development photos (the defaults of QualityThresholds)."""
    from training.calibrate_gate import calibrate

    calibrate(data, sample, quantile, out)


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write <label>/<category>_<i>.png and manifest.csv into.")],
    n: Annotated[int, typer.Option(help="Photos per category and label.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Draw a synthetic bag/watch set (labelled synthetic; for smoke tests and demos only)."""
    from training.data import write_manifest
    from training.synthetic import generate

    samples = generate(out, n, seed=seed)
    write_manifest(samples, out / "manifest.csv")
    typer.echo(f"wrote {len(samples)} synthetic photos and {out / 'manifest.csv'}")


@app.command("export-dataset")
def export_dataset_cmd(
    out: Annotated[Path, typer.Option(help="Folder for <label>/<sha256>.<ext> photos and manifest.csv.")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="The service's data dir (database, log key, blobs); default: AUTHENTICATOR_DATA_DIR / settings."
        ),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the service database (default from settings).")
    ] = None,
) -> None:
    """Write a manifest of the photos of every item a lab certified or rejected (read from the ledger)."""
    from authenticator.config import Settings
    from authenticator.ledger.log import Ledger
    from authenticator.store.blobs import BlobStore
    from training.export_dataset import export_dataset

    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)  # type: ignore[arg-type]
    with Ledger.from_settings(settings) as ledger:
        counts = export_dataset(ledger, BlobStore(settings.blob_dir), out)
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items()) + f"; manifest: {out / 'manifest.csv'}")


RecognitionManifest = Annotated[
    Path,
    typer.Option(
        "--recognition",
        help="Manifest of recognition-only photos (they teach the category check what a category looks like; "
        "no verdict is trained on them).",
        show_default=portable(DEV_RECOGNITION_MANIFEST),
    ),
]
CardPath = Annotated[Path, typer.Option(help="Model card (its graph and bank beside it).")]


@app.command("add-recognition")
def add_recognition_cmd(
    recognition: RecognitionManifest = DEV_RECOGNITION_MANIFEST,
    manifest: Annotated[
        Path, typer.Option(help="The development manifest the bank's training rows come from (same order).")
    ] = DEV_MANIFEST,
    card: CardPath = Path("weights/authenticator.card.json"),
    cache: Annotated[Path, typer.Option(help="Where the graph's outputs per photo are cached.")] = Path(
        "training/runs/cache"
    ),
) -> None:
    """Add recognition-only photos to the shipped reference bank (ONNX graph untouched), choose the
    card's imagenet_decisive_prob on the development photos and write the recognition rates into the card."""
    from training.data import load_samples
    from training.recognition import add_recognition, recognition_table

    figures = add_recognition(
        card,
        load_samples(manifest),
        load_samples(recognition),
        cache,
        log=typer.echo,
        reproduce=reproduce_command(sys.argv[1:]),
    )
    typer.echo(recognition_table(figures))


@app.command("recognition")
def recognition_cmd(
    recognition: RecognitionManifest = DEV_RECOGNITION_MANIFEST,
    manifest: Annotated[Path, typer.Option(help="The development manifest.")] = DEV_MANIFEST,
    card: CardPath = Path("weights/authenticator.card.json"),
    cache: Annotated[Path, typer.Option(help="Where the graph's outputs per photo are cached.")] = Path(
        "training/runs/cache"
    ),
) -> None:
    """Print how often the shipped model's "what is it?" check names each category (held out; no torch)."""
    from training.data import load_samples
    from training.recognition import measure_card, recognition_table

    typer.echo(recognition_table(measure_card(card, load_samples(manifest), load_samples(recognition), cache)))


@app.command("refit-lines")
def refit_lines_cmd(
    manifest: Annotated[
        Path,
        typer.Option(help="The manifest the shipped model was trained on.", show_default=portable(DEFAULT_MANIFEST)),
    ] = DEFAULT_MANIFEST,
    weights: Annotated[Path, typer.Option(help="Folder of the shipped model (ONNX, card, bank, report/).")] = Path(
        "weights"
    ),
    name: Annotated[str, typer.Option(help="Model name (file stem).")] = "authenticator",
    folds: Annotated[int, typer.Option(help="Item-grouped CV folds (as trained).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed (as trained).")] = 0,
    cache: Annotated[Path, typer.Option(help="Embedding cache (git-ignored).")] = Path("training/runs/cache"),
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples (item groups) for 95% intervals.")] = 500,
) -> None:
    """Fit the card's per-line operating points (and the bank's line labels, the report's section)
    for the shipped model from its own cached INT8 embeddings; the ONNX file is left byte-identical."""
    from training.data import load_samples
    from training.refit import refit_product_lines

    refit_product_lines(load_samples(manifest), weights, name, cache, folds, seed, bootstrap)
