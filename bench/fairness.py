"""Benchmark: one platform's costly uploads must not stall another's assessment (issue 11).

    .venv/bin/python bench/fairness.py [--runs 20] [--json FILE]

In one process, with the shipped model and default settings, side by side:

1. platform B's 4-photo assessment (real development photos) alone, ``--runs`` times in a row;
2. the same while platform A keeps ``--flood-clients`` (2) requests in flight, each of 12 flat
   PNGs of ``--flood-side`` (4000) px: 192 megapixels, just under the request budget;
3. the same with the fair queues but without the lower CPU priority of large photos (what the
   queues alone buy);
4. the same load with no principal given (everyone in one queue, first come first served, as
   before the fair scheduler): the peer that shows what the scheduler buys.

It prints B's p50/p90 in each case, the ratio loaded / alone (target: <= ~2x), A's throughput
(its requests are slowed, not starved), the time to refuse 12 flat 7000x7000 PNGs (588 MP,
over the budget) and the peak resident memory. Not a test: wall-clock figures of a shared machine.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
REAL = REPO.parent / "shared" / "data" / "real"


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB, from /proc."""
    status = Path("/proc/self/status").read_text()
    values = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Vm")}
    return int(values["VmRSS"]) / 1024, int(values["VmHWM"]) / 1024


def real_photos(n: int = 4) -> list[tuple[str, bytes]]:
    """``n`` development photos of one source (JPEGs as shipped in the manifest), deterministic."""
    rows = [r for r in csv.DictReader((REAL / "manifest.csv").open()) if r["path"].startswith("zhengwu123-aj1/")]
    rows.sort(key=lambda r: r["path"])
    picked = rows[:: max(1, len(rows) // n)][:n]
    return [(r["path"], (REAL / r["path"]).read_bytes()) for r in picked]


def flat_png(side: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side), (200, 180, 160)).save(buf, "PNG")
    return buf.getvalue()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def measure_b(assess: Any, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        assess()
        out.append((time.perf_counter() - t) * 1000)
    return out


def with_flood(assessor: Any, flood: list[Any], clients: int, principal: str | None, body: Any) -> dict[str, Any]:
    """Run ``body()`` while ``clients`` threads keep sending ``flood`` as ``principal``."""
    stop = threading.Event()
    done: list[float] = []
    errors: list[str] = []
    started = threading.Barrier(clients + 1)

    def client() -> None:
        started.wait()
        while not stop.is_set():
            t = time.perf_counter()
            try:
                assessor.assess(flood, principal=principal)
            except Exception as exc:  # reported, not hidden
                errors.append(repr(exc))
                return
            done.append(time.perf_counter() - t)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.5)  # the flood's first photos hold the workers before B starts
    t0 = time.perf_counter()
    result = body()
    elapsed = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    return {"b_ms": result, "flood_requests": len(done), "flood_request_s": done, "window_s": elapsed, "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="B's assessments per case")
    ap.add_argument("--shared-runs", type=int, default=5, help="B's assessments with one shared queue (slow)")
    ap.add_argument("--flood-clients", type=int, default=2)
    ap.add_argument("--flood-side", type=int, default=4000, help="side of A's flat PNGs (12 per request)")
    ap.add_argument("--json", type=Path, help="Also write the figures as JSON to this file (bench/report.py).")
    args = ap.parse_args()

    from authenticator.config import Settings
    from authenticator.errors import PixelBudgetExceeded
    from authenticator.vision.service import Assessor, PhotoInput

    settings = Settings()
    assessor = Assessor.from_settings(settings)
    mine = [PhotoInput(name, data) for name, data in real_photos(4)]
    png = flat_png(args.flood_side)
    flood = [PhotoInput(f"flat-{i}.png", png) for i in range(12)]
    flood_mp = 12 * args.flood_side**2 / 1e6
    assert flood_mp <= settings.vision_max_request_megapixels, "the flood must be under the request budget"

    def b(principal: str | None, runs: int = args.runs) -> Any:
        return lambda: measure_b(lambda: assessor.assess(mine, principal=principal), runs)

    measure_b(lambda: assessor.assess(mine, principal="platform-b"), 3)  # warm-up
    alone = b("platform-b")()
    fair = with_flood(assessor, flood, args.flood_clients, "platform-a", b("platform-b"))
    pool = assessor.scheduler.executor()
    assert pool is not None, "the benchmark needs vision_threads >= 2"
    low, pool.low_priority_above = pool.low_priority_above, None
    try:
        queues_only = with_flood(assessor, flood, args.flood_clients, "platform-a", b("platform-b"))
    finally:
        pool.low_priority_above = low
    shared = with_flood(assessor, flood, args.flood_clients, None, b(None, args.shared_runs))
    alone_again = b("platform-b")()

    big = flat_png(7000)
    refuse = [PhotoInput(f"flat7000-{i}.png", big) for i in range(12)]
    refuse_ms = []
    for _ in range(5):
        t = time.perf_counter()
        try:
            assessor.assess(refuse, principal="platform-a")
        except PixelBudgetExceeded:
            refuse_ms.append((time.perf_counter() - t) * 1000)
    assert len(refuse_ms) == 5, "12 flat 7000x7000 PNGs were not refused"
    rss_now, rss_peak = rss_mb()

    p50 = statistics.median
    base = p50(alone + alone_again)
    figures = {
        "cpus": os.cpu_count(),
        "vision_threads": settings.resolved_vision_threads,
        "runs": args.runs,
        "flood": f"{args.flood_clients} clients x 12 flat {args.flood_side}x{args.flood_side} PNGs "
        f"({len(png) // 1024} KB each, {flood_mp:.0f} MP per request)",
        "alone_p50_ms": base,
        "alone_p90_ms": pct(alone + alone_again, 0.9),
        "fair_p50_ms": p50(fair["b_ms"]),
        "fair_p90_ms": pct(fair["b_ms"], 0.9),
        "fair_ratio_p50": p50(fair["b_ms"]) / base,
        "fair_ratio_p90": pct(fair["b_ms"], 0.9) / pct(alone + alone_again, 0.9),
        "fair_flood_requests_per_s": fair["flood_requests"] / fair["window_s"],
        "queues_only_p50_ms": p50(queues_only["b_ms"]),
        "queues_only_p90_ms": pct(queues_only["b_ms"], 0.9),
        "queues_only_ratio_p50": p50(queues_only["b_ms"]) / base,
        "shared_p50_ms": p50(shared["b_ms"]),
        "shared_p90_ms": pct(shared["b_ms"], 0.9),
        "shared_ratio_p50": p50(shared["b_ms"]) / base,
        "shared_flood_requests_per_s": shared["flood_requests"] / shared["window_s"],
        "flood_request_p50_s": p50(fair["flood_request_s"]) if fair["flood_request_s"] else None,
        "refuse_588mp_p50_ms": p50(refuse_ms),
        "rss_mb": rss_now,
        "peak_rss_mb": rss_peak,
        "errors": fair["errors"] + queues_only["errors"] + shared["errors"],
    }
    rows = [
        ("machine", f"{os.cpu_count()} cores, vision threads {settings.resolved_vision_threads} "
         f"(workers {2 * settings.resolved_vision_threads}, {settings.resolved_vision_threads} per principal), "
         f"onnxruntime runs at once {settings.ort_max_concurrent_runs or 'unlimited'}"),
        ("platform A's load", figures["flood"]),
        ("B's 4-photo assessment alone, p50 / p90", f"{base:.1f} / {figures['alone_p90_ms']:.1f} ms"),
        ("**B while A floods, fair scheduler (principals given), p50 / p90**",
         f"**{figures['fair_p50_ms']:.1f} / {figures['fair_p90_ms']:.1f} ms**"),
        ("**ratio to alone, p50 / p90** (target <= ~2x)",
         f"**{figures['fair_ratio_p50']:.2f}x / {figures['fair_ratio_p90']:.2f}x**"),
        ("B while A floods, fair queues without the lower priority of large photos, p50 / p90",
         f"{figures['queues_only_p50_ms']:.1f} / {figures['queues_only_p90_ms']:.1f} ms "
         f"({figures['queues_only_ratio_p50']:.2f}x)"),
        ("B while A floods, one shared queue (no principal: first come, first served), p50 / p90",
         f"{figures['shared_p50_ms']:.1f} / {figures['shared_p90_ms']:.1f} ms ({figures['shared_ratio_p50']:.1f}x)"),
        ("A's requests completed per second during B's runs: fair / shared queue",
         f"{figures['fair_flood_requests_per_s']:.2f} / {figures['shared_flood_requests_per_s']:.2f}"),
        ("12 flat 7000x7000 PNGs (588 MP, over the budget): refused in, p50",
         f"{figures['refuse_588mp_p50_ms']:.1f} ms"),
        ("resident memory now / peak", f"{rss_now:.0f} / {rss_peak:.0f} MB"),
        ("errors", str(len(figures["errors"]))),
    ]  # fmt: skip
    print("| measurement | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
