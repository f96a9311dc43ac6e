"""Benchmark of the torch-free vision runtime (not a test; numbers go to docs/vision-bench.md).

    .venv/bin/python bench/vision.py [--runs 20]

On 1600x1200 JPEGs made from development photos:
- per-photo inference at batch 1: onnxruntime vs torch eager on the same weights (torch runs
  in a child process, ``--torch-worker``, rebuilt from training's network definition with the
  ONNX file's head; the child also reports the largest output difference to prove the weights
  are the same);
- one 4-photo assessment end to end (decode, gate, one batched forward pass, decide), p50/p90;
- JPEG decode, full vs reduced scale;
- resident memory of this serving process, asserting that ``torch`` was never imported.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
REAL = REPO.parent / "shared" / "data" / "real"


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB, from /proc."""
    status = Path("/proc/self/status").read_text()
    values = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Vm")}
    return int(values["VmRSS"]) / 1024, int(values["VmHWM"]) / 1024


def make_jpegs(n: int = 4) -> list[bytes]:
    from PIL import Image

    files = sorted((REAL / "zhengwu123-aj1" / "authentic").glob("*.jpg"))[:: max(1, 60 // n)][:n]
    out = []
    for f in files:
        img = Image.open(f).convert("RGB").resize((1600, 1200), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def timed(fn: object, runs: int) -> list[float]:
    fn()  # type: ignore[operator]
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t) * 1000)
    return out


def torch_worker(input_path: str, onnx_path: str, input_size: int, runs: int, threads: int, pool: str) -> None:
    """Child process: torch eager on the same trained weights, plus the float ONNX graph exported
    from them (what the INT8 graph was quantized from), timed with onnxruntime; prints JSON."""
    import onnx
    import torch
    from onnx import numpy_helper

    from authenticator.vision.runtime import inference_session
    from training.backbone import load_backbone
    from training.export import export_onnx
    from training.model import AuthenticatorNet

    torch.set_num_threads(threads)
    net = AuthenticatorNet(load_backbone(), input_size=input_size, pool=pool)
    heads = {i.name: numpy_helper.to_array(i) for i in onnx.load(onnx_path).graph.initializer if "auth_head" in i.name}
    with torch.no_grad():
        net.auth_head.weight.copy_(torch.from_numpy(heads["auth_head.weight"].copy()))
        net.auth_head.bias.copy_(torch.from_numpy(heads["auth_head.bias"].copy()))
    net.eval()
    x = torch.from_numpy(np.load(input_path))
    with torch.inference_mode():
        logit, imagenet, _emb = net(x[:1])
        ms = timed(lambda: net(x[:1]), runs)
    rss = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float.onnx"
        export_onnx(net, float_path, input_size)
        sess = inference_session(float_path, threads)
        feed = {"image": x[:1].numpy()}
        float_logit = float(np.asarray(sess.run(["authenticity_logit"], feed)[0]).reshape(-1)[0])
        float_ms = timed(lambda: sess.run(["authenticity_logit"], feed), runs)
    print(
        json.dumps(
            {
                "ms": ms,
                "logit": logit.numpy().tolist(),
                "imagenet": imagenet.numpy()[0].tolist(),
                "rss": rss[0],
                "float_onnx_ms": float_ms,
                "float_onnx_logit": float_logit,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--torch-worker", nargs=5, metavar=("INPUT", "ONNX", "SIZE", "POOL", "THREADS"))
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "vision-bench.md")
    ap.add_argument("--json", type=Path, help="Also write the key figures as JSON to this file (bench/report.py).")
    args = ap.parse_args()
    if args.torch_worker:
        inp, onnx_path, size, pool, threads = args.torch_worker
        torch_worker(inp, onnx_path, int(size), args.runs, threads=int(threads), pool=pool)
        return

    import cv2

    from authenticator.config import Settings
    from authenticator.vision.decode import decode_image, model_decode_size
    from authenticator.vision.service import Assessor, PhotoInput

    rss_start = rss_mb()[0]
    settings = Settings()
    t = time.perf_counter()
    assessor = Assessor.from_settings(settings)
    load_s = time.perf_counter() - t
    jpegs = make_jpegs(4)
    photos = [PhotoInput(f"photo{i}.jpg", d) for i, d in enumerate(jpegs)]
    size = assessor.card.preprocessing.input_size
    x = np.stack([assessor.model_input(d) for d in jpegs])

    ort_ms = timed(lambda: assessor.model.run(x[:1]), args.runs)
    ort4_ms = timed(lambda: assessor.model.run(x), max(5, args.runs // 4))
    e2e_ms = timed(lambda: assessor.assess(photos), args.runs)
    red = model_decode_size(size)
    dec_full = timed(lambda: decode_image(jpegs[0]), args.runs)
    dec_red = timed(lambda: decode_image(jpegs[0], reduce_to=red), args.runs)
    buf = np.frombuffer(jpegs[0], np.uint8)
    dec_cv2_half = timed(lambda: cv2.imdecode(buf, cv2.IMREAD_REDUCED_COLOR_2), args.runs)
    rss_now, rss_peak = rss_mb()
    assert "torch" not in sys.modules, "the serving process imported torch"
    result = assessor.assess(photos)
    ort_out = assessor.model.run(x[:1])

    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", x[:1])
        onnx_path = str(assessor.card.onnx_path(assessor.card_path))
        # training's network definition: MIL approaches score regions of the feature map
        pool = "regions" if str(assessor.card.metrics.get("approach", "")).startswith("mil") else "mean"
        # The ratio compares like with like: torch with as many threads as onnxruntime serves with
        # (ort_intra_op_threads); torch with both cores is shown beside it.
        ort_threads = settings.ort_intra_op_threads or (os.cpu_count() or 1)
        torch_runs = {}
        for threads in sorted({ort_threads, 2}):
            proc = subprocess.run(
                [sys.executable, __file__, "--runs", str(args.runs), "--torch-worker", str(Path(tmp) / "x.npy"),
                 onnx_path, str(size), pool, str(threads)],
                capture_output=True, text=True, check=True, cwd=REPO,
            )  # fmt: skip
            torch_runs[threads] = json.loads(proc.stdout.strip().splitlines()[-1])
    tw, tw2 = torch_runs[ort_threads], torch_runs[2]
    logit_diff = abs(tw["logit"][0] - float(ort_out.logits[0]))
    float_diff = abs(tw["logit"][0] - tw["float_onnx_logit"])
    inet_diff = float(np.abs(np.asarray(tw["imagenet"]) - ort_out.imagenet_logits[0]).max())  # type: ignore[index]
    quant = assessor.card.metrics.get("quantization")
    graph = "INT8" if quant else "float"

    p50 = statistics.median
    ratio = p50(tw["ms"]) / p50(ort_ms)
    float_ratio = p50(tw["ms"]) / p50(tw["float_onnx_ms"])
    e2e = sorted(e2e_ms)
    rows = [
        ("model", f"{assessor.card.name} {assessor.card.version}, input {size} px, {graph} graph, "
         f"sha256 {assessor.model_sha256[:12]}"),
        ("machine", f"{platform.machine()}, {os.cpu_count()} cores, onnxruntime threads "
         f"intra={settings.ort_intra_op_threads}, max batch {settings.ort_max_batch}, "
         f"vision threads {settings.resolved_vision_threads}, onnxruntime runs at once "
         f"{settings.ort_max_concurrent_runs or 'unlimited'}, load average {os.getloadavg()[0]:.1f}"),
        ("model load + self-test", f"{load_s * 1000:.0f} ms"),
        (f"onnxruntime, served {graph} graph, batch 1, p50", f"{p50(ort_ms):.1f} ms"),
        (f"torch eager, batch 1, p50 ({ort_threads} thread(s), as onnxruntime)", f"{p50(tw['ms']):.1f} ms"),
        ("**ratio torch / served onnxruntime, same threads** (target ≥ 3×)", f"**{ratio:.2f}×**"),
        ("onnxruntime, float graph exported from the same weights, batch 1, p50",
         f"{p50(tw['float_onnx_ms']):.1f} ms (torch / float onnxruntime {float_ratio:.2f}×)"),
        ("torch eager, batch 1, p50 (2 threads)", f"{p50(tw2['ms']):.1f} ms"),
        ("|logit difference| to torch: float onnxruntime / served graph",
         f"{float_diff:.1e} / {logit_diff:.1e} (ImageNet logits {inet_diff:.1e})"),
        ("onnxruntime, batch 4, p50", f"{p50(ort4_ms):.1f} ms"),
        ("**4-photo assessment end to end, p50** (target ≤ 50 ms)", f"**{p50(e2e_ms):.1f} ms**"),
        ("4-photo assessment, p90", f"{e2e[int(0.9 * (len(e2e) - 1))]:.1f} ms"),
        ("decode 1600×1200 JPEG: full / reduced (reduce_to=" + str(red) + ") / cv2 REDUCED_2",
         f"{p50(dec_full):.1f} / {p50(dec_red):.1f} / {p50(dec_cv2_half):.1f} ms"),
        ("**RSS of the serving process** (target ≤ 300 MB)", f"**{rss_now:.0f} MB** (peak {rss_peak:.0f}, "
         f"{rss_start:.0f} before loading)"),
        ("torch imported by the serving process", str("torch" in sys.modules)),
        ("RSS of the torch eager process", f"{tw['rss']:.0f} MB"),
        ("decision on the 4 photos", f"{result.decision} (P={result.probability_authentic})"),
    ]  # fmt: skip
    quant_note = (
        f"- The served graph is INT8 (static QDQ, {quant['calibration_photos']} calibration photos, "
        f"{quant['calibration_method']}); its head, temperature, thresholds and every card metric were fitted on "
        "the INT8 graph's own embeddings (training/quantize.py), so the logit differs from torch's float logit "
        "by the quantization error shown above, by design. The float row shows the same weights in onnxruntime "
        "without quantization."
        if quant
        else "- The served graph is float: onnxruntime and torch compute the same logit (difference above)."
    )
    lines = [
        "# Vision runtime benchmark",
        "",
        f"`bench/vision.py --runs {args.runs}` on 1600×1200 JPEGs (development photos resized), "
        "times in milliseconds of wall clock (the machine's 2 cores are shared with other work, so "
        "treat the numbers as upper bounds).",
        "",
        "| measurement | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
        "Notes:",
        "",
        quant_note,
        '- Both graphs have TF "same" padding frozen into constants at export (training/export.py), which lets '
        "onnxruntime fold every Pad into its Conv.",
        "- An assessment runs each photo's decode, gate and batch-1 inference on a pool of `vision_threads` "
        "workers (one onnxruntime thread each, no spinning), so the 2 cores work on different photos at once.",
        "- The torch eager comparison rebuilds training's network and copies the head from the ONNX file.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.json:
        figures = {
            "model": f"{assessor.card.name} {assessor.card.version} ({size} px, {graph})",
            "ort_batch1_p50_ms": p50(ort_ms),
            "torch_batch1_p50_ms": p50(tw["ms"]),
            "torch_threads": ort_threads,
            "ort_threads": ort_threads,
            "torch_2threads_batch1_p50_ms": p50(tw2["ms"]),
            "float_onnx_batch1_p50_ms": p50(tw["float_onnx_ms"]),
            "graph": graph,
            "assessment4_p50_ms": p50(e2e_ms),
            "assessment4_p90_ms": e2e[int(0.9 * (len(e2e) - 1))],
            "rss_mb": rss_now,
            "torch_rss_mb": tw["rss"],
            "torch_imported": "torch" in sys.modules,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
