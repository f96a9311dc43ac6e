"""One benchmark report: runs bench/ledger.py, bench/vision.py, bench/fairness.py, bench/api.py
(SQLite and PostgreSQL) and bench/serving.py (the API against the inference-only limit, a shadow
model's overhead), then writes ``bench/results/<date>.json`` (every raw figure) and
``bench/results/<date>.md``: one table of figure, target, measured, ratio to the target and
ratio to the peer measured in the same run (the other store, torch eager).

    make bench                      # or: .venv/bin/python bench/report.py
    .venv/bin/python bench/report.py --quick   # small sizes, a smoke run of the whole chain

Ratios read "times better": above 1 the target is met (or we beat the peer), below 1 it is not,
whether the figure is a rate (higher is better) or a latency (lower is better).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.pg_scratch import create_scratch_schema, drop_scratch_schema  # noqa: E402

RESULTS = REPO / "bench" / "results"
SCRIPT_LIMIT_S = 600  # each script must finish in 10 minutes on 2 cores


@dataclass
class Row:
    section: str
    figure: str
    target: str
    measured: str
    vs_target: float | None
    peer: str
    vs_peer: float | None


def better(value: float, reference: float, higher_is_better: bool) -> float:
    """How many times better ``value`` is than ``reference``."""
    if higher_is_better:
        return value / reference
    return reference / value


def run_script(args: list[str], log: list[str]) -> tuple[str, float]:
    started = time.monotonic()
    print(f"$ {' '.join(args)}", file=sys.stderr, flush=True)
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE, text=True, timeout=SCRIPT_LIMIT_S, check=True
    )
    seconds = time.monotonic() - started
    log.append(f"{_display(' '.join(args))}: {seconds:.0f} s")  # no temporary paths in the shipped JSON
    return proc.stdout, seconds


def _json_tail(text: str) -> Any:
    """The JSON document at the end of a script's stdout (server log lines may come before it)."""
    start = text.find("\n{")
    return json.loads(text[start + 1 :] if start >= 0 else text)


def api_bench(extra: list[str], quick: bool, log: list[str]) -> dict[str, Any]:
    sizes = ["--assessments", "16", "--traces", "160"] if quick else []
    out, seconds = run_script(["bench/api.py", "--json", *sizes, *extra], log)
    result: dict[str, Any] = _json_tail(out)
    result["seconds"] = seconds
    return result


#: The ledger's targets, each a ratio to a limit bench/ledger.py measures in the same run (issue 12):
#: key in its ``ratios``, figure, bound (None: reported only), higher is better, stores it binds.
LEDGER_RATIOS: list[tuple[str, str, float | None, bool, tuple[str, ...]]] = [
    ("c64_vs_b1000", "single appends from 64 callers / batch 1,000 (group commit)", 0.5, True, ("sqlite", "postgres")),
    ("b1000_vs_raw_insert", "batch 1,000 / raw INSERT of the same rows, same durability", None, True, ()),
    (
        "verify_vs_raw_sha256",
        "verify (hashes, roots, signatures) / raw SHA-256 of the same entries",
        0.5,
        True,
        ("sqlite", "postgres"),
    ),
    ("proof_p50_vs_pk_read_p50", "inclusion proof p50 / primary-key read p50", 3.0, False, ("postgres",)),
    ("head_p50_vs_pk_read_p50", "head proof p50 / primary-key read p50", 3.0, False, ("postgres",)),
    ("map_vs_nomap_b1000", "batch 1,000 with / without the item map", 0.7, True, ("sqlite", "postgres")),
]


def ledger_rows(results: list[dict[str, Any]]) -> list[Row]:
    """The ratio targets first, then the absolute figures they are made of (reported, no target:
    the same code measured 25k and 12.7k batch appends a second on two machines of one kind)."""
    by_store = {r["store"]: r for r in results}
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    rows: list[Row] = []
    for store, r in by_store.items():
        other = next((o for s, o in by_store.items() if s != store), None)
        peer_name = names["postgres" if store == "sqlite" else "sqlite"]
        for key, figure, bound, higher, binds in LEDGER_RATIOS:
            value = float(r["ratios"][key])
            target = bound if store in binds else None
            peer_value = float(other["ratios"][key]) if other is not None else None
            rows.append(
                Row(
                    section="ledger",
                    figure=f"{names[store]}: {figure}",
                    target="—" if target is None else f"{'≥' if higher else '≤'} {target:g}",
                    measured=f"{value:.2f}",
                    vs_target=None if target is None else better(value, target, higher),
                    peer="—" if peer_value is None else f"{peer_name} {peer_value:.2f}",
                    vs_peer=None if peer_value is None else better(value, peer_value, higher),
                )
            )
        specs: list[tuple[str, str, bool, str]] = [
            # key, figure, higher is better, unit
            ("append_c64", "single appends from 64 callers", True, "entries/s"),
            ("append_b1000", "append, batch 1,000", True, "entries/s"),
            ("append_b100", "append, batch 100", True, "entries/s"),
            ("append_b1", "append, batch 1", True, "entries/s"),
            ("proof_p50_ms", f"inclusion proof p50 at {r['size']:,} entries", False, "ms"),
            ("proof_p99_ms", f"inclusion proof p99 at {r['size']:,} entries", False, "ms"),
            ("pk_read_p50_ms", "primary-key read p50 (the proofs' limit)", False, "ms"),
            ("verify_hashes", "ledger verify: hashes, roots, signatures", True, "entries/s"),
            ("verify_semantic", "ledger verify: full semantic check", True, "entries/s"),
        ]
        for key, figure, higher, unit in specs:
            value = float(r[key])
            peer_value = float(other[key]) if other is not None else None
            rows.append(
                Row(
                    section="ledger",
                    figure=f"{names[store]}: {figure}",
                    target="—",
                    measured=f"{_num(value)} {unit}",
                    vs_target=None,
                    peer="—" if peer_value is None else f"{peer_name} {_num(peer_value)}",
                    vs_peer=None if peer_value is None else better(value, peer_value, higher),
                )
            )
    return rows


def two_thread_note(v: dict[str, Any]) -> str:
    key = "torch_2threads_batch1_p50_ms"
    return f" (2 threads {v[key]:.1f} ms)" if key in v else ""


def vision_rows(v: dict[str, Any]) -> list[Row]:
    speedup = v["torch_batch1_p50_ms"] / v["ort_batch1_p50_ms"]
    float_rows = []
    if "float_onnx_batch1_p50_ms" in v:
        float_speedup = v["torch_batch1_p50_ms"] / v["float_onnx_batch1_p50_ms"]
        float_rows.append(
            Row(
                "vision",
                "inference per photo, batch 1, p50 (float graph of the same weights, onnxruntime)",
                "—",
                f"{v['float_onnx_batch1_p50_ms']:.1f} ms",
                None,
                f"torch eager, same threads {v['torch_batch1_p50_ms']:.1f} ms",
                float_speedup,
            )
        )
    return [
        Row(
            "vision",
            f"inference per photo, batch 1, p50 ({v['model']}, onnxruntime, {v.get('ort_threads', 1)} thread(s))",
            "≥ 3× faster than torch eager",
            f"{v['ort_batch1_p50_ms']:.1f} ms",
            speedup / 3,
            f"torch eager, same threads {v['torch_batch1_p50_ms']:.1f} ms" + two_thread_note(v),
            speedup,
        ),
        *float_rows,
        Row(
            "vision",
            "4-photo assessment end to end (decode, gate, infer, decide), p50",
            "≤ 50 ms",
            f"{v['assessment4_p50_ms']:.1f} ms (p90 {v['assessment4_p90_ms']:.1f})",
            better(v["assessment4_p50_ms"], 50.0, False),
            "—",
            None,
        ),
        Row(
            "vision",
            f"resident memory serving the model (torch imported: {v['torch_imported']})",
            "≤ 300 MB",
            f"{v['rss_mb']:.0f} MB",
            better(v["rss_mb"], 300.0, False),
            f"torch eager process {v['torch_rss_mb']:.0f} MB",
            better(v["rss_mb"], v["torch_rss_mb"], False),
        ),
    ]


def fairness_rows(f: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "vision",
            f"another platform's 4-photo assessment while one floods ({f['flood']}), p50, ratio to alone "
            f"({f['alone_p50_ms']:.0f} ms)",
            "≤ 2× alone",
            f"{f['fair_p50_ms']:.0f} ms ({f['fair_ratio_p50']:.2f}×)",
            better(f["fair_ratio_p50"], 2.0, False),
            f"one shared queue {f['shared_p50_ms']:.0f} ms ({f['shared_ratio_p50']:.1f}×)",
            better(f["fair_p50_ms"], f["shared_p50_ms"], False),
        )
    ]


def api_rows(runs: dict[str, dict[str, Any]]) -> list[Row]:
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    rows: list[Row] = []
    for store, run in runs.items():
        other = next((o for s, o in runs.items() if s != store), None)
        for r in run["rows"]:
            peer = next((p for p in other["rows"] if p["operation"] == r["operation"]), None) if other else None
            peer_name = names["postgres" if store == "sqlite" else "sqlite"]
            rows.append(
                Row(
                    "api",
                    f"{names[store]}: {r['operation']}s over HTTP, concurrency {r['concurrency']} "
                    f"(p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, {r['errors']} errors"
                    + (
                        f"; server resident {run['meta']['server_rss_mb']} MB, peak "
                        f"{run['meta']['server_peak_rss_mb']} MB)"
                        if r["operation"] == "4-photo assessment" and "server_rss_mb" in run.get("meta", {})
                        else ")"
                    ),
                    "—",
                    f"{r['per_second']:.1f} /s",
                    None,
                    "—" if peer is None else f"{peer_name} {peer['per_second']:.1f} /s",
                    None if peer is None else better(r["per_second"], peer["per_second"], True),
                )
            )
    return rows


def serving_rows(run: dict[str, Any]) -> list[Row]:
    """bench/serving.py: the API's 4-photo throughput against the inference-only limit measured in
    the same run (target >= 80%), and the shadow model's overhead on the 4-photo p50 (target <= 10%)."""
    limit, api, shadow = run["inference_limit"], run["api"], run["shadow"]
    rows = [
        Row(
            "serving",
            f"SQLite: 4-photo assessments over HTTP, concurrency {api['concurrency']}, shadow off (p50 "
            f"{api['p50_ms']:.0f} ms, p99 {api['p99_ms']:.0f} ms, {api['errors']} errors) vs the inference-only "
            f"limit ({limit['threads']} threads, batch 1, 4 preprocessed photos: {limit['per_second']:.1f} /s)",
            ">= 80% of the limit",
            f"{api['per_second']:.1f} /s ({api['ratio_to_inference_limit']:.0%})",
            api["ratio_to_inference_limit"] / 0.8,
            f"inference only {limit['per_second']:.1f} /s",
            api["ratio_to_inference_limit"],
        ),
    ]
    memoized = run.get("api_photo_checks_memoized")  # reports before 2026-11-28 have none
    if memoized is not None:
        rows.append(
            Row(
                "serving",
                "diagnostic: the same load on a server that decodes, gates, hashes and resizes each distinct photo "
                "once (every photo still runs through the model; server CPU "
                f"{memoized['server_cpu_ms_per_assessment']:.0f} ms per assessment against "
                f"{api['server_cpu_ms_per_assessment']:.0f}): the API's ceiling if the photo checks cost nothing",
                "—",
                f"{memoized['per_second']:.1f} /s ({memoized['ratio_to_inference_limit']:.0%} of the limit)",
                None,
                f"with the checks {api['per_second']:.1f} /s",
                memoized["ratio_to_api"],
            )
        )
    rows.append(
        Row(
            "serving",
            f"4-photo assessment p50, one at a time, with a shadow model ({shadow['requests_each']} requests each, "
            f"alternating blocks; the shadow scored {shadow['scored']}, dropped {shadow['dropped']})",
            "<= 10% slower",
            f"{shadow['p50_on_ms']:.1f} ms ({shadow['overhead']:+.1%})",
            1.10 / (1 + shadow["overhead"]),
            f"no shadow {shadow['p50_off_ms']:.1f} ms",
            better(shadow["p50_on_ms"], shadow["p50_off_ms"], False),
        )
    )
    return rows


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(value: float | None, mark_miss: bool = False) -> str:
    if value is None:
        return "—"
    mark = " ✗" if mark_miss and value < 1 else ""
    return f"{value:.2f}×{mark}"


def _display(command: str) -> str:
    """A script's command line without temporary paths and database URLs."""
    command = re.sub(r" --(json|out) /[^\s:]+", "", command)
    return re.sub(r"--db \S+?(?=: \d|\s|$)", "--db postgresql://…", command)


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    lines = [
        f"Benchmark report {meta['date']} (`make bench`; {meta['cpus']} cores shared with other work, load average "
        f'{meta["load_before"]:.1f} before and {meta["load_after"]:.1f} after). Ratios are "times better": '
        "above 1 the target is met or the peer beaten; ✗ marks a missed target.",
        "",
        "| figure | target | measured | ratio to target | peer (same run) | ratio to peer |",
        "|---|---|---:|---:|---|---:|",
    ]
    lines += [
        f"| {r.figure} | {r.target} | {r.measured} | {_ratio(r.vs_target, True)} | {r.peer} | {_ratio(r.vs_peer)} |"
        for r in rows
    ]
    lines += ["", "Script run times: " + "; ".join(_display(c) for c in meta["scripts"]) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: check the chain, not the figures")
    ap.add_argument("--date", default=datetime.now(UTC).strftime("%Y-%m-%d"))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--render", type=Path, help="only rewrite the markdown of a saved <date>.json")
    args = ap.parse_args()
    if args.render:
        raw = json.loads(args.render.read_text())
        text = markdown([Row(**r) for r in raw["rows"]], raw["meta"])
        args.render.with_suffix(".md").write_text(text)
        print(text)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    scripts: list[str] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        ledger_json = Path(tmp) / "ledger.json"
        vision_json = Path(tmp) / "vision.json"
        fairness_json = Path(tmp) / "fairness.json"
        ledger_sizes = ["--entries", "20000", "--proofs", "500", "--batch1", "200"] if args.quick else []
        run_script(["bench/ledger.py", "--json", str(ledger_json), *ledger_sizes], scripts)
        vision_md = Path(tmp) / "vision.md"
        runs = ["--runs", "5"] if args.quick else []
        run_script(["bench/vision.py", "--json", str(vision_json), "--out", str(vision_md), *runs], scripts)
        run_script(["bench/fairness.py", "--json", str(fairness_json), *runs], scripts)
        ledger = json.loads(ledger_json.read_text())
        vision = json.loads(vision_json.read_text())
        fairness = json.loads(fairness_json.read_text())
    api: dict[str, dict[str, Any]] = {"sqlite": api_bench([], args.quick, scripts)}
    schema, url = create_scratch_schema("bench_api")
    try:
        api["postgres"] = api_bench(["--db", url], args.quick, scripts)
    finally:
        drop_scratch_schema(schema)
    quick_serving = ["--requests", "24", "--blocks", "1", "--per-block", "8", "--limit-seconds", "3"]
    serving_sizes = quick_serving if args.quick else []
    serving = _json_tail(run_script(["bench/serving.py", "--json", *serving_sizes], scripts)[0])
    meta = {
        "date": args.date,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "quick": args.quick,
        "scripts": scripts,
    }
    rows = (
        ledger_rows(ledger["results"])
        + vision_rows(vision)
        + fairness_rows(fairness)
        + api_rows(api)
        + serving_rows(serving)
    )
    stem = args.date + ("-quick" if args.quick else "")
    raw = {
        "meta": meta,
        "rows": [asdict(r) for r in rows],
        "ledger": ledger,
        "vision": vision,
        "fairness": fairness,
        "api": api,
        "serving": serving,
    }
    (args.out / f"{stem}.json").write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    text = markdown(rows, meta)
    (args.out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
