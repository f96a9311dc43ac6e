"""Benchmark of the HTTP API against a real server on loopback (not a test).

Starts ``authenticator serve`` on a free port with a fresh data directory (SQLite by default,
``--db`` for PostgreSQL), creates keys, then measures with concurrent clients:

* 4-photo assessments per second at concurrency 8 (real photos from ../shared/data/real), p50/p99;
* trace reads per second at concurrency 8, p50/p99.

Usage: ``.venv/bin/python bench/api.py [--assessments 80] [--traces 800] [--concurrency 8]
[--db URL] [--workers 1] [--weights DIR] [--json]``. Uses the shipped weights unless
``--weights`` names another folder (``--tiny`` builds the tiny test model instead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import httpx

REPO = Path(__file__).resolve().parent.parent
REAL = REPO.parent / "shared" / "data" / "real"
CLI = str(Path(sys.executable).parent / "authenticator")


def shown_path(path: Path) -> str:
    """``path`` as the results record it: relative to the checkout when it lies in it (never the
    absolute folders of the machine that ran the benchmark)."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, server: subprocess.Popen[Any], log: Path | None = None) -> None:
    """Block until the server at ``base`` answers ``/readyz`` (at most 120 s, or until it exits;
    then the end of ``log``, when given, says why)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            why = f": {log.read_text()[-2000:]}" if log is not None and log.is_file() else ""
            raise SystemExit(f"the server did not become ready{why}")
        time.sleep(0.2)


def photos(n: int) -> list[tuple[str, bytes]]:
    files = sorted((REAL / "zhengwu123-aj1" / "authentic").iterdir())[:n]
    return [(p.name, p.read_bytes()) for p in files]


def process_tree_rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of ``pid`` and its child processes (uvicorn workers), from /proc."""
    now = peak = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        values = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Vm")}
        now += int(values.get("VmRSS", 0)) / 1024
        peak += int(values.get("VmHWM", 0)) / 1024
    return now, peak


class BenchServer:
    """``authenticator serve`` on a free port for one benchmark phase (``command``: the program
    to run instead of the CLI, which takes its arguments): an admin key made with the CLI
    beforehand, a platform key made through the API, the server stopped on exit."""

    def __init__(
        self, env: dict[str, str], log: Path | None = None, *, command: list[str] | None = None, workers: int = 1
    ) -> None:
        self.env, self.log, self.command, self.workers = env, log, command or [CLI], workers

    def __enter__(self) -> Self:
        admin = json.loads(
            subprocess.run(
                [CLI, "keys", "create", "--role", "admin", "--name", "bench"],
                env=self.env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )["api_key"]
        port = free_port()
        self.process = subprocess.Popen(
            [*self.command, "serve", "--port", str(port), "--workers", str(self.workers), "--log-level", "warning"],
            env=self.env,
            stderr=None if self.log is None else self.log.open("w"),
        )
        self.base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(self.base, self.process, self.log)
            self.http = httpx.Client(base_url=self.base, timeout=300)
            made = self.http.post(
                "/v1/keys", json={"role": "platform", "name": "bench"}, headers={"Authorization": f"Bearer {admin}"}
            )
            self.auth = {"Authorization": f"Bearer {made.json()['api_key']}"}
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if hasattr(self, "http"):
            self.http.close()
        self.process.terminate()
        self.process.wait(timeout=30)

    def new_items(self, n: int, model: str = "Air Jordan 1") -> list[str]:
        """``n`` new sneaker items (a second assessment of an item with the same photos by the same
        model is refused with 409, which is not what the benchmarks measure)."""
        body = {"category": "sneaker", "brand": "Nike", "model": model}
        return [self.http.post("/v1/items", json=body, headers=self.auth).json()["id"] for _ in range(n)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run_load(base: str, n: int, concurrency: int, make: Any) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async with httpx.AsyncClient(base_url=base, timeout=300) as http:

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.perf_counter()
                r = await make(http, i)
                latencies.append(time.perf_counter() - t)
                if r.status_code >= 300:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return wall, latencies, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assessments", type=int, default=80)
    ap.add_argument("--traces", type=int, default=800)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--db", default=None, help="database URL (default: SQLite in a temp dir)")
    ap.add_argument("--weights", type=Path, default=REPO / "weights")
    ap.add_argument("--tiny", action="store_true", help="use the tiny test model (no shipped weights needed)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    weights = args.weights
    if args.tiny:
        sys.path.insert(0, str(REPO))
        from tests.vision_tiny_model import write_tiny_model

        weights = tmp / "weights"
        write_tiny_model(weights)
    env = {**os.environ, "AUTHENTICATOR_DATA_DIR": str(tmp / "data"), "AUTHENTICATOR_WEIGHTS_DIR": str(weights)}
    if args.db:
        env["AUTHENTICATOR_DATABASE_URL"] = args.db
    # MALLOC_ARENA_MAX as scripts/serve.sh and the Dockerfile run the server
    env.setdefault("MALLOC_ARENA_MAX", "2")
    with BenchServer(env, workers=args.workers) as server:
        base, pauth = server.base, server.auth
        items = server.new_items(args.concurrency + args.assessments, model="AJ1")
        four = photos(4)
        files = [("photos", (name, data, "image/jpeg")) for name, data in four]

        fresh = iter(items)

        async def assess(http: httpx.AsyncClient, _i: int) -> httpx.Response:
            return await http.post(f"/v1/items/{next(fresh)}/assessments", files=files, headers=pauth)

        async def trace(http: httpx.AsyncClient, i: int) -> httpx.Response:
            return await http.get(f"/v1/items/{items[i % len(items)]}/trace")

        asyncio.run(run_load(base, args.concurrency, args.concurrency, assess))  # warm-up
        rows = []
        for name, n, fn in (("4-photo assessment", args.assessments, assess), ("trace read", args.traces, trace)):
            wall, lat, errors = asyncio.run(run_load(base, n, args.concurrency, fn))
            rows.append(
                {
                    "operation": name,
                    "requests": n,
                    "concurrency": args.concurrency,
                    "errors": errors,
                    "per_second": n / wall,
                    "p50_ms": 1000 * statistics.median(lat),
                    "p99_ms": 1000 * pct(lat, 99),
                }
            )
        size = int(httpx.get(f"{base}/v1/log/checkpoint").text.split("\n")[1])
        rss, peak_rss = process_tree_rss_mb(server.process.pid)
    meta = {
        "database": "postgresql" if args.db else "sqlite",
        "workers": args.workers,
        "model": "tiny test model" if args.tiny else shown_path(weights),
        "log_size_after": size,
        "server_rss_mb": round(rss),
        "server_peak_rss_mb": round(peak_rss),
        "photo_bytes": sum(len(d) for _, d in four),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(f"API benchmark: {meta}")
    print("| operation | requests | concurrency | per second | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['operation']} | {r['requests']} | {r['concurrency']} | {r['per_second']:.1f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |"
        )


if __name__ == "__main__":
    main()
