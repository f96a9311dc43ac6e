"""Background model runs give way to live work (authenticator/vision/live_work.py): a shadow
model's run waits while a live assessment is in flight and, when one arrives mid-run, is stopped
by onnxruntime and run again once the live work is done. Real sessions of the shipped model."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from authenticator.config import Settings
from authenticator.vision.card import ModelCard
from authenticator.vision.live_work import LiveWork
from authenticator.vision.runtime import OnnxModel
from authenticator.vision.service import Assessor, PhotoInput
from tests.api_helpers import real_photos

SHIPPED = Settings().weights_dir / f"{Settings().model_name}.card.json"
pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped model")


@pytest.fixture(scope="module")
def model() -> OnnxModel:
    return OnnxModel(ModelCard.load(SHIPPED), SHIPPED)


@pytest.fixture
def x(model: OnnxModel) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (1, 3, model.input_size, model.input_size)).astype(np.float32)


def _in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_a_background_run_waits_for_live_work_to_end(model: OnnxModel, x: np.ndarray) -> None:
    live = LiveWork()
    ran = threading.Event()

    def run(options: ort.RunOptions) -> Any:
        ran.set()
        return model.run(x, options)

    with live.live():
        assert live.busy
        t, out = _in_thread(lambda: live.run_in_background(run))
        assert not ran.wait(0.3)  # held back while the live work is in flight
    t.join(30)
    assert ran.is_set() and "error" not in out
    np.testing.assert_array_equal(out["value"].logits, model.run(x).logits)
    assert live.stopped_runs == 0 and not live.busy


def test_a_running_background_run_is_stopped_and_run_again(model: OnnxModel, x: np.ndarray) -> None:
    """Live work arriving mid-run sets the run's terminate flag: onnxruntime stops it with an error,
    and the run is made again, to the same outputs, once the live work is done."""
    live = LiveWork()
    started, arrived, calls = threading.Event(), threading.Event(), []

    def run(options: ort.RunOptions) -> Any:
        calls.append(options)
        if len(calls) == 1:
            started.set()
            assert arrived.wait(30)  # live work comes while this run is in progress
            assert options.terminate
        return model.run(x, options)

    t, out = _in_thread(lambda: live.run_in_background(run))
    assert started.wait(30)
    with live.live():
        arrived.set()
        t.join(0.3)
        assert t.is_alive()  # the run again waits for the live work
    t.join(30)
    assert "error" not in out, out.get("error")
    assert len(calls) == 2 and live.stopped_runs == 1
    np.testing.assert_array_equal(out["value"].logits, model.run(x).logits)


def test_a_background_run_that_fails_on_its_own_raises(model: OnnxModel) -> None:
    live = LiveWork()
    wrong = np.zeros((1, 3, 8, 8), dtype=np.float32)  # not the model's input size
    with pytest.raises(Exception, match=r"(?i)dimension|shape|invalid"):
        live.run_in_background(lambda options: model.run(wrong, options))
    assert live.stopped_runs == 0


@pytest.fixture(scope="module")
def assessors() -> Iterator[tuple[Assessor, Assessor]]:
    settings = Settings()
    served = Assessor(ModelCard.load(SHIPPED), SHIPPED, settings)
    shadow = Assessor(
        ModelCard.load(SHIPPED), SHIPPED, settings.model_copy(update={"vision_threads": 1}), background=True
    )
    yield served, shadow


def test_a_served_assessment_is_live_work_and_a_shadow_one_gives_way(
    assessors: tuple[Assessor, Assessor], monkeypatch: pytest.MonkeyPatch
) -> None:
    from authenticator.vision import live_work, service

    live = LiveWork()
    monkeypatch.setattr(service, "LIVE_WORK", live)
    monkeypatch.setattr(live_work, "LIVE_WORK", live)
    served, shadow = assessors
    photos = [PhotoInput(p.name, p.read_bytes()) for p in real_photos(2)]
    seen: list[int] = []
    inner = Assessor._assess

    def watched(self: Assessor, *a: Any) -> Any:
        seen.append(live.in_flight)  # live calls in flight as it starts
        return inner(self, *a)

    monkeypatch.setattr(Assessor, "_assess", watched)
    want = served.assess(photos)
    assert seen == [1] and not live.busy  # the served model's assessment was live work
    with live.live():  # a live request in flight: the shadow's assessment waits
        t, out = _in_thread(lambda: shadow.assess(photos))
        t.join(0.5)
        assert t.is_alive() and "value" not in out
    t.join(60)
    assert "error" not in out, out.get("error")
    assert out["value"].decision == want.decision
    assert [p.logit for p in out["value"].photos] == [p.logit for p in want.photos]
    assert seen == [1, 1]  # only the request held: the shadow's own assessment is not live work


# --- several workers: live work shared through <data_dir>/live-work.slots -------------------------


def _other_worker(path: str, entered: Any, release: Any, crash: bool) -> None:
    """Another worker process of the deployment: live work in flight until ``release`` (or until
    it dies with it in flight, when ``crash``)."""
    import os

    live = LiveWork()
    live.attach(Path(path))
    with live.live():
        entered.set()
        if crash:
            os._exit(3)  # no clean-up: its slot still says 1
        release.wait(60)


@pytest.fixture
def other_worker(tmp_path: Path) -> Iterator[Any]:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    started: list[Any] = []

    def start(crash: bool = False) -> tuple[Any, Any]:
        entered, release = ctx.Event(), ctx.Event()
        proc = ctx.Process(target=_other_worker, args=(str(tmp_path / "live.slots"), entered, release, crash))
        proc.start()
        started.append((proc, release))
        assert entered.wait(60)
        return proc, release

    yield start
    for proc, release in started:
        release.set()
        proc.join(30)


def test_a_background_run_waits_for_another_workers_live_work(
    model: OnnxModel, x: np.ndarray, tmp_path: Path, other_worker: Any
) -> None:
    live = LiveWork()
    live.attach(tmp_path / "live.slots")
    proc, release = other_worker()
    ran = threading.Event()

    def run(options: ort.RunOptions) -> Any:
        ran.set()
        return model.run(x, options)

    t, out = _in_thread(lambda: live.run_in_background(run))
    assert not ran.wait(0.3)  # the other worker's request is in flight
    release.set()
    proc.join(30)
    t.join(30)
    assert ran.is_set() and "error" not in out, out.get("error")
    np.testing.assert_array_equal(out["value"].logits, model.run(x).logits)


def test_another_workers_live_work_stops_a_running_background_run(
    model: OnnxModel, x: np.ndarray, tmp_path: Path, other_worker: Any
) -> None:
    live = LiveWork()
    live.attach(tmp_path / "live.slots")
    started, go, calls = threading.Event(), threading.Event(), []

    def run(options: ort.RunOptions) -> Any:
        calls.append(options)
        if len(calls) == 1:
            started.set()
            assert go.wait(60)  # the other worker's request has started meanwhile
            for _ in range(3000):  # the watcher sees it and stops this run
                if options.terminate:
                    break
                threading.Event().wait(0.01)
        return model.run(x, options)

    t, out = _in_thread(lambda: live.run_in_background(run))
    assert started.wait(30)
    proc, release = other_worker()
    go.set()
    t.join(0.5)
    assert t.is_alive() and len(calls) == 1  # stopped, and waiting for the other worker
    release.set()
    proc.join(30)
    t.join(30)
    assert "error" not in out, out.get("error")
    assert len(calls) == 2 and live.stopped_runs == 1


def test_a_crashed_workers_slot_does_not_hold_background_runs_back(
    model: OnnxModel, x: np.ndarray, tmp_path: Path, other_worker: Any
) -> None:
    proc, _release = other_worker(crash=True)
    proc.join(30)
    assert proc.exitcode == 3
    live = LiveWork()
    live.attach(tmp_path / "live.slots")
    out = live.run_in_background(lambda options: model.run(x, options))  # does not wait for the dead
    np.testing.assert_array_equal(out.logits, model.run(x).logits)


def test_a_worker_that_cannot_share_its_live_work_still_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every slot taken (or a file system without byte-range locks): the worker logs it and its
    shadow gives way to its own requests only, instead of failing to start."""
    from authenticator.vision import live_slots

    def no_locks(*_a: Any) -> None:
        raise OSError(37, "No locks available")

    monkeypatch.setattr(live_slots.fcntl, "lockf", no_locks)
    live = LiveWork()
    live.attach(tmp_path / "live.slots")
    assert "not shared with other workers" in caplog.text
    with live.live():
        assert live.busy
    live.wait_idle()  # returns: nothing else is live
