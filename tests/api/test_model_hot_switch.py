"""Promotion and rollback on a running ``authenticator serve --workers 2`` under concurrent load
(issue 13, point 6): no request is lost, every verdict names its model, and the switch is atomic
across the workers: a request sent after ``model promote`` returned is answered by the new model,
whichever worker takes it; one that finished before the promotion started, by the old one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from authenticator.config import Settings
from tests.api_helpers import real_photos
from tests.live_server import bootstrap_admin, run_cli, server_env, start_server
from tests.model_candidates import report, tiny, write_evaluation


def test_promotion_and_rollback_under_load_are_atomic_across_two_workers(tmp_path: Path) -> None:
    _, sha_a = tiny(tmp_path / "weights", seed=0)
    card_b, sha_b = tiny(tmp_path / "candidate", seed=1)
    write_evaluation(card_b.parent, report(sha_a, sha_b, (0.004, 0.35)))
    settings = Settings(data_dir=tmp_path / "data", weights_dir=tmp_path / "weights", database_url=None)
    env = server_env(settings, upload_rate_per_minute="0")
    admin = bootstrap_admin(env)
    server = start_server(env, tmp_path / "server.log", workers=2)
    done: list[dict[str, Any]] = []
    try:
        http = httpx.Client(base_url=server.base, timeout=60)
        made = http.post(
            "/v1/keys", json={"role": "platform", "name": "Shop"}, headers={"Authorization": f"Bearer {admin}"}
        )
        auth = {"Authorization": f"Bearer {made.json()['api_key']}"}
        photos = [(p.name, p.read_bytes()) for p in real_photos(30)]
        lock = threading.Lock()
        stop = threading.Event()
        counter = iter(range(10**6))

        def client() -> None:
            with httpx.Client(base_url=server.base, timeout=60) as c:
                while not stop.is_set():
                    with lock:
                        i = next(counter)
                    name, data = photos[i % len(photos)]
                    item = c.post(
                        "/v1/items", json={"category": "sneaker", "brand": "Nike", "model": "Dunk"}, headers=auth
                    )
                    start = time.monotonic()
                    try:
                        r = c.post(
                            f"/v1/items/{item.json()['id']}/assessments",
                            files=[("photos", (name, data, "image/jpeg"))],
                            headers=auth,
                        )
                        status, model = r.status_code, r.json().get("model", {}).get("sha256")
                    except Exception as exc:  # a lost request: recorded, and the test fails on it
                        status, model = 0, repr(exc)
                    done.append({"start": start, "end": time.monotonic(), "status": status, "model": model})

        def wait_for(n: int, since: float) -> None:
            deadline = time.monotonic() + 120
            while sum(d["start"] > since for d in done) < n:
                assert time.monotonic() < deadline, (len(done), done[-3:])
                time.sleep(0.05)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(30, 0.0)
        promote_start = time.monotonic()
        res = run_cli(["model", "promote", str(card_b.parent)], env)
        promote_end = time.monotonic()
        assert res.returncode == 0, res.stderr
        wait_for(25, promote_end)
        both_switched(server.log_text, sha_b)
        rollback_start = time.monotonic()
        res = run_cli(["model", "rollback"], env)
        rollback_end = time.monotonic()
        assert res.returncode == 0, res.stderr
        wait_for(25, rollback_end)
        both_switched(server.log_text, sha_a)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        log = server.log_text()
        listed = run_cli(["model", "list"], env).stdout
    finally:
        stop.set()
        server.stop()

    assert all(d["status"] == 201 for d in done), [d for d in done if d["status"] != 201][:3]  # no request lost
    assert {d["model"] for d in done} == {sha_a, sha_b}  # every verdict names its model
    before = [d for d in done if d["end"] < promote_start]
    between = [d for d in done if d["start"] > promote_end and d["end"] < rollback_start]
    after = [d for d in done if d["start"] > rollback_end]
    assert len(before) >= 20 and len(between) >= 10 and len(after) >= 20
    assert {d["model"] for d in before} == {sha_a}
    assert {d["model"] for d in between} == {sha_b}  # atomic: no worker answers with the old model
    assert {d["model"] for d in after} == {sha_a}
    # both workers switched (each logs its pid when it starts serving another model)
    assert len(switched_to(sha_b, log)) == 2, log[-2000:]
    assert len(switched_to(sha_a, log)) == 2, log[-2000:]  # and both switched back
    assert f"serving    {sha_a[:16]}" in listed and f"retired    {sha_b[:16]}" in listed


def switched_to(sha: str, log: str) -> set[str]:
    """The pids of the workers that logged serving ``sha`` (each logs when it switches)."""
    return {line.split("worker ")[1].split(":")[0] for line in log.splitlines() if f"serving model {sha}" in line}


def both_switched(log_text: Callable[[], str], sha: str) -> None:
    """Wait until both workers logged serving ``sha``: the one the kernel handed no request too
    switches (its model watcher), so none keeps a model the log replaced."""
    deadline = time.monotonic() + 60
    while len(switched_to(sha, log_text())) < 2:
        assert time.monotonic() < deadline, log_text()[-2000:]
        time.sleep(0.1)
