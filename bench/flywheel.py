"""The flywheel, measured (issue 13, point 4): lab certificates in, better models out, on real HTTP.

The development photos are split by item (a hash of source and item group): a **seed** share is the
"development data" the first model is trained on (the shipped graph, head refitted on the seed
items); the rest is **marketplace traffic**. A real ``authenticator serve`` (fresh data dir, SQLite)
serves the seed model; the traffic goes through the API as a platform would send it (register the
item as its product line, assess its photos); a simulated lab certifies a fraction of the items with
their true label (wrong with probability ``--lab-error``) through the certificate API. Every
``--every`` certificates the loop runs the lifecycle as an operator would, with the CLI:
``authenticator model dataset`` -> ``train`` -> ``evaluate`` -> ``promote`` (promoted, or refused by
the rule); the server switches models without a restart.

Measured after each round, on items never trained on (the traffic items the frozen split holds back,
whether or not the lab saw them; their true labels are known here): coverage and false-pass of the
serving model, per item, exactly as the evaluation scores the held-back slice; plus the live
verdicts' coverage. Output: ``bench/results/flywheel-<date>.json`` and ``.md`` and a learning-curve
plot ``flywheel-<date>.png``.

Usage: ``.venv/bin/python bench/flywheel.py [--seed-share 0.5] [--certify 0.8] [--lab-error 0.0]
[--every 100] [--max-items 0] [--photos-per-item 3]`` (defaults: a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
REAL = REPO.parent / "shared" / "data" / "real"
CLI = str(Path(sys.executable).parent / "authenticator")
RESULTS = REPO / "bench" / "results"

from bench.api import free_port, wait_ready  # noqa: E402
from training.lifecycle import held_back  # noqa: E402
from training.product_lines import SOURCE_MODEL_LINE  # noqa: E402


def _bucket(key: str) -> float:
    return int(hashlib.sha256(f"flywheel|{key}".encode()).hexdigest()[:12], 16) / 16**12


def split_items(manifest: Path, seed_share: float) -> tuple[list[dict[str, str]], dict[str, list[dict[str, str]]]]:
    """Seed rows (the first model's development data) and traffic items (key -> rows)."""
    seed, traffic = [], {}
    for row in csv.DictReader(manifest.open()):
        key = f"{row['path'].split('/')[0]}|{row['item_group']}"
        if _bucket(key) < seed_share:
            seed.append(row)
        else:
            traffic.setdefault(key, []).append(row)
    return seed, traffic


def registration(rows: list[dict[str, str]]) -> dict[str, str]:
    """What a platform registers the item as: its category, brand and model line."""
    r = rows[0]
    source = r["path"].split("/")[0]
    brand = r["brand"] or "Unknown"
    model = SOURCE_MODEL_LINE.get(source, "")
    if brand.startswith("Nike ") and not model:  # the development manifest writes "Nike Air Force 1"
        brand, model = "Nike", brand.removeprefix("Nike ")
    return {"category": r["category"], "brand": brand, "model": model or "Unknown"}


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)


def sign(payload: dict[str, Any], key: Any) -> dict[str, Any]:
    from authenticator.dsse import sign_envelope

    return sign_envelope(payload, key)


def evaluate_serving(card: Path, held_rows: list[dict[str, str]], cache: Path) -> dict[str, Any]:
    """The serving model on the never-trained traffic items, per item, as served (training's held-back scorer)."""
    from training.data import Sample
    from training.lifecycle import held_back_part

    samples = []
    for r in held_rows:
        reg = registration([r])
        samples.append(
            Sample(
                path=REAL / r["path"],
                label=r["label"],
                category=r["category"],
                item_group=r["item_group"],
                source=r["path"].split("/")[0],
                brand=reg["brand"],
                extra={"model": reg["model"], "sha256": r["sha256"]},
            )
        )
    part = held_back_part(card, samples, cache, 0)
    o = part["overall"]
    lines = {k: v for k, v in part["per_source"].items()}
    return {
        "items": o.get("n"),
        "coverage": o.get("coverage"),
        "false_pass_rate": o.get("false_pass_rate"),
        "false_pass": o.get("counterfeit_called_authentic"),
        "counterfeit_items": o.get("n_counterfeit"),
        "false_reject_rate": o.get("false_reject_rate"),
        "authentic_called_authentic": o.get("authentic_called_authentic"),
        "per_source": {
            s: {"n": v.get("n"), "coverage": v.get("coverage"), "false_pass_rate": v.get("false_pass_rate")}
            for s, v in lines.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed-share", type=float, default=0.5, help="share of items in the first model's data")
    ap.add_argument("--certify", type=float, default=0.8, help="share of traffic items a lab certifies")
    ap.add_argument("--lab-error", type=float, default=0.0, help="probability a certificate has the wrong label")
    ap.add_argument("--every", type=int, default=100, help="certificates between lifecycle rounds")
    ap.add_argument("--max-items", type=int, default=0, help="traffic items to replay (0: all)")
    ap.add_argument("--photos-per-item", type=int, default=3)
    ap.add_argument(
        "--min-items",
        type=int,
        default=100,
        help="recorded only: a line is validated with training.product_lines.MIN_ITEMS_PER_CLASS items per label",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    t0 = time.time()
    rng = random.Random(0)
    tmp = Path(tempfile.mkdtemp(prefix="flywheel-"))
    cache = REPO / "training" / "runs" / "cache"
    seed_rows, traffic = split_items(REAL / "manifest.csv", args.seed_share)
    seed_manifest = tmp / "seed" / "manifest.csv"
    seed_manifest.parent.mkdir(parents=True)
    with seed_manifest.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(seed_rows[0]))
        w.writeheader()
        for r in seed_rows:
            w.writerow({**r, "path": str(REAL / r["path"])})
    keys = sorted(traffic)
    rng.shuffle(keys)
    if args.max_items:
        keys = keys[: args.max_items]

    # the first model: the shipped graph, head refitted on the seed items (the same recipe as model train)
    from training.lifecycle import build_dataset, train_candidate

    seed_ds = build_dataset(seed_manifest, None, tmp / "seed" / "dataset", min_items_per_label=5)
    weights = tmp / "seed" / "model"
    train_candidate(
        seed_ds.manifest.parent,
        REPO / "weights" / "authenticator.card.json",
        weights,
        version="flywheel-seed",
        cache_dir=cache,
        bootstrap_reps=50,
        log=lambda m: None,
    )
    env = {
        **os.environ,
        "AUTHENTICATOR_DATA_DIR": str(tmp / "data"),
        "AUTHENTICATOR_WEIGHTS_DIR": str(weights),
        "AUTHENTICATOR_UPLOAD_RATE_PER_MINUTE": "0",
    }
    admin = json.loads(run([CLI, "keys", "create", "--role", "admin", "--name", "ops"], env).stdout)["api_key"]
    port = free_port()
    server = subprocess.Popen(
        [CLI, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=REPO,
        stdout=(tmp / "server.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    rounds: list[dict[str, Any]] = []
    live = {"assessed": 0, "decided": 0, "refused": 0}
    try:
        wait_ready(base, server, tmp / "server.log")
        http = httpx.Client(base_url=base, timeout=120)
        adm = {"Authorization": f"Bearer {admin}"}
        market = http.post("/v1/keys", json={"role": "platform", "name": "Market"}, headers=adm).json()
        plat = {"Authorization": f"Bearer {market['api_key']}"}
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        lab_key = Ed25519PrivateKey.generate()
        pub = base64.b64encode(lab_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
        lab = http.post(
            "/v1/labs", json={"name": "Sim Lab", "accreditation": "ISO/IEC 17025", "public_key": pub}, headers=adm
        ).json()
        lauth = {"Authorization": f"Bearer {lab['api_key']}"}

        # every traffic item registered first (as its product line), and whether the lab will see it:
        # the items never trained on are those the frozen split holds back (by item id) or no lab sees
        item_of, certify = {}, {}
        for key in keys:
            item_of[key] = http.post("/v1/items", json=registration(traffic[key]), headers=plat).json()["id"]
            certify[key] = rng.random() < args.certify
        never_trained = [
            {**r, "item_group": item_of[k]}
            for k in keys
            if held_back(item_of[k]) or not certify[k]
            for r in traffic[k][: args.photos_per_item]
        ]
        print(
            f"seed: {len(seed_rows)} photos; traffic: {len(keys)} items, "
            f"{len({r['item_group'] for r in never_trained})} never trained on"
        )

        def measure(certified: int, step: dict[str, Any]) -> None:
            models = http.get("/v1/models").json()
            serving = next(m for m in models if m["status"] == "serving")
            card = weights / "authenticator.card.json"
            if serving["sha256"] != json.loads(card.read_text())["sha256"]:
                card = next((tmp / "data" / "models" / serving["sha256"]).glob("*.card.json"))
            step |= {
                "certified": certified,
                "serving": serving["sha256"][:16],
                "never_trained": evaluate_serving(card, never_trained, cache),
                "live": dict(live),
                "seconds": round(time.time() - t0),
            }
            rounds.append(step)
            nt = step["never_trained"]
            print(
                f"[{step['seconds']:5d}s] certified {certified:4d}  {step.get('outcome', ''):9s} "
                f"serving {step['serving']}"
                f"  never-trained items {nt['items']}: coverage {nt['coverage']} false-pass {nt['false_pass_rate']}"
            )

        measure(0, {"outcome": "seed"})
        certified = 0
        since = 0
        for n, key in enumerate(keys):
            rows = traffic[key]
            item = item_of[key]
            picked = rows[: args.photos_per_item]
            files = [("photos", (Path(r["path"]).name, (REAL / r["path"]).read_bytes(), "image/jpeg")) for r in picked]
            r = http.post(f"/v1/items/{item}/assessments", files=files, headers=plat)
            if r.status_code == 201:
                live["assessed"] += 1
                live["decided"] += r.json()["decision"] != "inconclusive"
            else:
                live["refused"] += 1
            if not certify[key]:
                continue
            truth = rows[0]["label"]
            outcome = (
                truth if rng.random() >= args.lab_error else ("counterfeit" if truth == "authentic" else "authentic")
            )
            payload = {
                "v": 1,
                "item_id": item,
                "lab_id": lab["id"],
                "outcome": outcome,
                "inspection_date": date.today().isoformat(),
                "method": "physical inspection (simulated)",
                "photos": [r["sha256"] for r in picked],
                "report_sha256": None,
            }
            c = http.post(f"/v1/items/{item}/certificates", json=sign(payload, lab_key), headers=lauth)
            if c.status_code != 201:
                continue
            certified += 1
            since += 1
            if since < args.every and n < len(keys) - 1:
                continue
            since = 0
            step: dict[str, Any] = {}
            ds = run(
                [CLI, "model", "dataset", "--manifest", str(seed_manifest), "--min-items", "5", "--min-certified", "1"],
                env,
            )
            if ds.returncode:
                step["outcome"] = "no dataset"
                step["detail"] = ds.stderr.strip()[-300:]
                measure(certified, step)
                continue
            version = f"flywheel-{certified}"
            tr = run([CLI, "model", "train", "--version", version], env)
            cand = tmp / "data" / "lifecycle" / "candidates" / version
            ev = run([CLI, "model", "evaluate", str(cand)], env)
            if tr.returncode or ev.returncode:
                step["outcome"] = "failed"
                step["detail"] = (tr.stderr + ev.stderr)[-500:]
                measure(certified, step)
                continue
            report = json.loads((cand / "evaluation" / "report.json").read_text())
            pr = run([CLI, "model", "promote", str(cand)], env)
            step["outcome"] = "promoted" if pr.returncode == 0 else "refused"
            step["refusal"] = None if pr.returncode == 0 else pr.stderr.strip()[-400:]
            step["evaluation"] = report["summary"]
            step["lines_validated"] = [
                op["key"]
                for op in (json.loads(next(cand.glob("*.card.json")).read_text()).get("product_lines") or {}).get(
                    "lines", []
                )
                if op["validated"]
            ]
            measure(certified, step)
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = args.out or RESULTS / f"flywheel-{datetime.now(UTC).date().isoformat()}"
    doc = {
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "seed_photos": len(seed_rows),
        "traffic_items": len(keys),
        "never_trained_items": rounds[0]["never_trained"]["items"] if rounds else 0,
        "rounds": rounds,
        "seconds": round(time.time() - t0),
        "cpus": os.cpu_count(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    out.with_suffix(".md").write_text(markdown(doc))
    plot(doc, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.md')} in {doc['seconds']} s")


def markdown(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    L = [
        "# Flywheel (bench/flywheel.py)",
        "",
        f"Seed (first model's data): {doc['seed_photos']} development photos; traffic: {doc['traffic_items']} items "
        f"replayed through the API ({s['photos_per_item']} photos each); the lab certifies {s['certify']:.0%} of them "
        f"(label error {s['lab_error']:.0%}); a lifecycle round every {s['every']} certificates. Measured on "
        f"{doc['never_trained_items']} traffic items never trained on (held back by the frozen split, or never "
        "certified), per item, as served. "
        f"{doc['seconds']} s on {doc['cpus']} CPUs.",
        "",
        "| certified items | round | serving model | validated lines | coverage (never trained on) | false-pass "
        "| false-reject | authentic calls | live verdicts decided |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in doc["rounds"]:
        nt = r["never_trained"]
        lv = r["live"]
        lines = ", ".join(k.split("/")[-1] for k in r.get("lines_validated", [])) or (
            "–" if r["outcome"] != "seed" else "seed"
        )
        L.append(
            f"| {r['certified']} | {r['outcome']} | {r['serving']} | {lines} | {nt['coverage']} "
            f"| {nt['false_pass_rate']} ({nt['false_pass']}/{nt['counterfeit_items']}) | {nt['false_reject_rate']} "
            f"| {nt['authentic_called_authentic']} "
            f"| {lv['decided']}/{lv['assessed']} |"
        )
    refusals = [r for r in doc["rounds"] if r.get("refusal")]
    if refusals:
        L += ["", "Refusals:", ""] + [f"- at {r['certified']}: {r['refusal']}" for r in refusals]
    L += ["", "Learning curve: the .png beside this file.", ""]
    return "\n".join(L)


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["certified"] for r in doc["rounds"]]
    cov = [r["never_trained"]["coverage"] or 0 for r in doc["rounds"]]
    fp = [r["never_trained"]["false_pass_rate"] or 0 for r in doc["rounds"]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(xs, cov, "o-", label="coverage")
    ax.plot(xs, fp, "s-", label="false-pass")
    ax.axhline(0.01, color="k", lw=0.8, ls=":")
    ax.set(xlabel="lab-certified items", ylabel="share of never-trained items", title="Flywheel: learning curve")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
