"""Serving at the compute limit, and what a shadow model costs (issue 13, points 3 and 5). Not a test.

One run, one machine, the shipped model:

1. **Inference-only limit**: the shipped ONNX session alone (no decode, no HTTP, no log), the 4
   photos preprocessed once, as many threads as cores each running batch-1 inferences: 4-photo
   assessments per second that the model's compute allows on this machine. It is the very session
   the assessor serves with (same options, the same three outputs), and it is the whole of the
   model work of an assessment: with shadow off the API runs exactly one session run per photo
   (the category check and the product-line vote are numpy on that run's outputs; no second
   model). Measured before the vision pipeline and again after the API run; the higher of the two
   is the limit (on a shared machine the load moves between phases: the higher rate is the
   stricter yardstick). Also its CPU time per 4 inferences.
2. **Vision pipeline**: ``Assessor.assess`` in-process, concurrency 8 (decode, gate, inference,
   category, decision; no HTTP, no log): where the rest of the gap is.
3. **API throughput**: ``authenticator serve`` (1 worker, SQLite, shadow off), concurrency 8, each
   request a new item with the same 4 photos: 4-photo assessments per second, p50/p99; the ratio to
   (1). Also the server's CPU time per assessment (its process tree, from /proc), and the ratio of
   (1)'s CPU time per 4 inferences to it: what the ratio would be with both cores given to the
   server, a figure other processes on the machine move much less than the rates.
   **The same load with the photo checks memoized** (bench/memoized_checks_serve.py, a diagnostic
   server, not production): each distinct photo decoded, gated, hashed and resized once, then
   reused; every photo still runs through the model, and HTTP, the log and the projections are
   paid as before. Its ratio to (1) is the ceiling of (3) if the photo checks cost nothing.
4. **Shadow overhead**: the 4-photo assessment's p50 latency one request at a time, in alternating
   blocks with no shadow model and with one (the shipped graph with another head, scoring every
   verdict in the background at the lowest CPU priority), plus what the shadow scored and dropped.

Usage: ``.venv/bin/python bench/serving.py [--requests 120] [--blocks 8] [--per-block 15] [--json]``
(eight alternating blocks a side: the shadow figure moved by several points between runs of three).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api import CLI, BenchServer, pct, photos, run_load  # noqa: E402


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its child processes (uvicorn workers), from /proc."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def inference_limit(weights: Path, four: list[tuple[str, bytes]], seconds: float, threads: int) -> dict[str, Any]:
    from authenticator.config import Settings
    from authenticator.vision.service import Assessor

    assessor = Assessor.from_settings(Settings(weights_dir=weights))
    xs = [assessor.model_input(data)[None] for _, data in four]
    model = assessor.model
    for x in xs:
        model.run(x)
    counts = [0] * threads
    cpu_before = time.process_time()
    stop = time.monotonic() + seconds

    def work(k: int) -> None:
        i = 0
        while time.monotonic() < stop:
            model.run(xs[i % 4])
            i += 1
        counts[k] = i

    started = time.monotonic()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.monotonic() - started
    cpu = time.process_time() - cpu_before
    return {
        "threads": threads,
        "photos_per_second": sum(counts) / wall,
        "per_second": sum(counts) / wall / 4,
        "cpu_ms_per_assessment": 1000 * cpu / (sum(counts) / 4),
        "load_average": round(os.getloadavg()[0], 2),
    }


def pipeline_rate(weights: Path, four: list[tuple[str, bytes]], requests: int, concurrency: int) -> dict[str, Any]:
    """The whole vision pipeline in-process (decode, quality gate, inference, category, decision; no
    HTTP, no log, no photo index), ``concurrency`` requests at once, as the server's thread pool runs it."""
    from concurrent.futures import ThreadPoolExecutor

    from authenticator.config import Settings
    from authenticator.vision.product_lines import DeclaredLine
    from authenticator.vision.service import Assessor, PhotoInput

    assessor = Assessor.from_settings(Settings(weights_dir=weights))
    photos = [PhotoInput(name, data) for name, data in four]
    line = DeclaredLine("sneaker", "Nike", "Air Jordan 1")
    assessor.assess(photos, line=line)
    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: assessor.assess(photos, line=line), range(requests)))
    return {"requests": requests, "concurrency": concurrency, "per_second": requests / (time.monotonic() - started)}


def shadow_candidate(weights: Path, out: Path) -> Path:
    """The shipped graph with its head's bias moved by 0.01: another model file, same cost."""
    import onnx
    from onnx import numpy_helper

    from authenticator.vision.card import ModelCard, sha256_file

    shutil.copytree(weights, out, ignore=shutil.ignore_patterns("report"))
    card_path = out / "authenticator.card.json"
    card = ModelCard.load(card_path)
    graph = onnx.load(str(out / card.onnx_file))
    for init in graph.graph.initializer:
        if init.name == "auth_head.bias":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(0.01), init.name))
    onnx.save(graph, str(out / card.onnx_file))
    card.sha256 = sha256_file(out / card.onnx_file)
    card.version += "-shadow-bench"
    card_path.write_text(card.model_dump_json(indent=2))
    return out


#: The diagnostic server of bench/memoized_checks_serve.py: the photo checks done once per photo.
MEMOIZED_CHECKS = [sys.executable, str(REPO / "bench" / "memoized_checks_serve.py")]


class Server(BenchServer):
    """The server of one phase: :class:`BenchServer` plus the 4-photo load this script measures."""

    def api_load(self, requests: int, concurrency: int, files: list[Any]) -> dict[str, Any]:
        """``requests`` 4-photo assessments, ``concurrency`` at once, each of a new item, after a
        warm-up of ``concurrency``; the rate, latencies and the server's CPU time per assessment."""
        items = self.new_items(requests + concurrency)

        async def assess(client: httpx.AsyncClient, i: int) -> httpx.Response:
            return await client.post(f"/v1/items/{items[i]}/assessments", files=files, headers=self.auth)

        asyncio.run(run_load(self.base, concurrency, concurrency, assess))  # warm-up (first items)
        items = items[concurrency:]
        cpu_before, load_before = process_tree_cpu_s(self.process.pid), os.getloadavg()[0]
        wall, lat, errors = asyncio.run(run_load(self.base, requests, concurrency, assess))
        return {
            "requests": requests,
            "concurrency": concurrency,
            "errors": errors,
            "per_second": requests / wall,
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * pct(lat, 99),
            "server_cpu_ms_per_assessment": 1000 * (process_tree_cpu_s(self.process.pid) - cpu_before) / requests,
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=120)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--per-block", type=int, default=15)
    ap.add_argument("--limit-seconds", type=float, default=10.0)
    ap.add_argument("--weights", type=Path, default=REPO / "weights")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    four = photos(4)
    files = [("photos", (name, data, "image/jpeg")) for name, data in four]
    load_before = os.getloadavg()[0]
    limits = [inference_limit(args.weights, four, args.limit_seconds, os.cpu_count() or 2)]
    pipeline = pipeline_rate(args.weights, four, max(16, args.requests // 2), args.concurrency)
    env = {
        **os.environ,
        "AUTHENTICATOR_WEIGHTS_DIR": str(args.weights),
        "AUTHENTICATOR_UPLOAD_RATE_PER_MINUTE": "0",
        "MALLOC_ARENA_MAX": "2",
    }
    with Server(env | {"AUTHENTICATOR_DATA_DIR": str(tmp / "data")}, tmp / "server.log") as server:
        api = server.api_load(args.requests, args.concurrency, files)
        # the same load on a server that does each photo's checks once (the same 4 photos every time)
        memo_env = env | {"AUTHENTICATOR_DATA_DIR": str(tmp / "data-memoized")}
        with Server(memo_env, tmp / "memoized.log", command=MEMOIZED_CHECKS) as memoized:
            ceiling = memoized.api_load(args.requests, args.concurrency, files)
        http, auth, env = server.http, server.auth, server.env
        # the limit again, right after the API run (the server idles meanwhile)
        limits.append(inference_limit(args.weights, four, args.limit_seconds, os.cpu_count() or 2))

        # shadow overhead: one request at a time, alternating blocks without and with a shadow model
        candidate = shadow_candidate(args.weights, tmp / "candidate")
        from authenticator.vision.card import ModelCard

        shadow_sha = ModelCard.load(candidate / "authenticator.card.json").sha256
        seq_items = iter(server.new_items(2 * args.blocks * args.per_block))
        timings: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.blocks):
            for mode in ("off", "on"):
                cmd = ["model", "shadow", str(candidate)] if mode == "on" else ["model", "shadow", "--stop", shadow_sha]
                if mode == "on" or timings["on"]:
                    subprocess.run([CLI, *cmd], env=env, check=True, capture_output=True)
                http.post(f"/v1/items/{next(seq_items)}/assessments", files=files, headers=auth)  # the switch
                time.sleep(1.0 if mode == "on" else 0.2)
                for _ in range(args.per_block - 1):
                    t = time.perf_counter()
                    r = http.post(f"/v1/items/{next(seq_items)}/assessments", files=files, headers=auth)
                    timings[mode].append(time.perf_counter() - t)
                    assert r.status_code == 201, r.text
        time.sleep(2.0)
        report = http.get(f"/v1/models/{shadow_sha}/shadow").json()
        rss_note = (tmp / "server.log").read_text()[-500:]
    off, on = statistics.median(timings["off"]), statistics.median(timings["on"])
    limit = max(limits, key=lambda r: r["per_second"]) | {"runs": limits}
    result = {
        "meta": {
            "cpus": os.cpu_count(),
            "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
            "photo_bytes": sum(len(d) for _, d in four),
            "photo_sizes": "4 JPEGs of the zhengwu123-aj1 source (580 px wide)",
        },
        "inference_limit": limit,
        "vision_pipeline": pipeline | {"ratio_to_inference_limit": pipeline["per_second"] / limit["per_second"]},
        "api": api
        | {
            "ratio_to_inference_limit": api["per_second"] / limit["per_second"],
            "ratio_to_vision_pipeline": api["per_second"] / pipeline["per_second"],
            "cpu_ratio_to_inference_limit": min(r["cpu_ms_per_assessment"] for r in limits)
            / api["server_cpu_ms_per_assessment"],
        },
        "api_photo_checks_memoized": ceiling
        | {
            "ratio_to_inference_limit": ceiling["per_second"] / limit["per_second"],
            "ratio_to_api": ceiling["per_second"] / api["per_second"],
        },
        "shadow": {
            "p50_off_ms": 1000 * off,
            "p50_on_ms": 1000 * on,
            "overhead": on / off - 1,
            "requests_each": len(timings["on"]),
            "scored": report.get("scored"),
            "dropped": report.get("dropped"),
            "failed": report.get("failed"),
            "agreement": report.get("agreement"),
        },
        "server_log_tail": rss_note if "Traceback" in rss_note else "",
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
