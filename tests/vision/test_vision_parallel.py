"""The assessor's thread pool (``vision_threads``): same answers as one photo after the other.

Real development photos from every source, a blurred copy that fails the gate and a file that
is not an image go through the pooled and the sequential path; the Assessment JSON (photo
order included) must be byte-identical, and the scores must equal those of one batched forward
pass over the same inputs.
"""

from __future__ import annotations

import csv
import io
import random
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from authenticator.config import Settings
from authenticator.errors import NoUsablePhoto, UnsupportedFormat
from authenticator.vision.decode import decode_image
from authenticator.vision.runtime import ModelOutputs
from authenticator.vision.service import Assessor, PhotoInput
from tests.vision_tiny_model import write_tiny_model
from training.calibrate_gate import blur

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
ROWS = list(csv.DictReader((REAL / "manifest.csv").open()))
SOURCES = sorted({r["path"].split("/")[0] for r in ROWS})
SHIPPED = Settings().weights_dir / f"{Settings().model_name}.card.json"
NOT_AN_IMAGE = PhotoInput("notes.jpg", b"just text, renamed\n" * 10)


def _real(n_per_source: int, seed: int) -> list[PhotoInput]:
    rng = random.Random(seed)
    out = []
    for source in SOURCES:
        rows = [r for r in ROWS if r["path"].startswith(source + "/")]
        out += [PhotoInput(r["path"], (REAL / r["path"]).read_bytes()) for r in rng.sample(rows, n_per_source)]
    return out


def _blurred(photo: PhotoInput) -> PhotoInput:
    d = decode_image(photo.data)
    rgb, _ = blur(d.rgb, d.alpha)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return PhotoInput("blurred-" + photo.filename.replace("/", "-"), buf.getvalue())


@pytest.fixture(scope="module")
def mixed() -> list[PhotoInput]:
    """One photo of each source, an undecodable file, a blurred copy (gate failure), more photos."""
    good = _real(2, seed=5)
    photos = [*good[::2], NOT_AN_IMAGE, _blurred(good[0]), *good[1::2]]
    return photos


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-parallel")
    rng = np.random.default_rng(1)
    write_tiny_model(folder, bank=(rng.normal(size=(20, 16)), ["sneaker"] * 15 + ["bag"] * 5))
    return folder


def _assessor(threads: int, **settings: object) -> Assessor:
    return Assessor.from_settings(Settings(vision_threads=threads, **settings))  # type: ignore[arg-type]


def _check_mixed_result_shape(json_doc: str, photos: list[PhotoInput]) -> None:
    """The request really exercises every per-photo outcome."""
    import json

    doc = json.loads(json_doc)
    assert [p["file"] for p in doc["photos"]] == [p.filename for p in photos]
    by_file = {p["file"]: p for p in doc["photos"]}
    assert [r["code"] for r in by_file["notes.jpg"]["reasons"]] == ["unsupported_format"]
    blurred = next(p for p in doc["photos"] if p["file"].startswith("blurred-"))
    assert "blurred" in [r["code"] for r in blurred["reasons"]] and blurred["logit"] is None
    assert sum(p["logit"] is not None for p in doc["photos"]) >= len(SOURCES)


def _batched_logits(a: Assessor, photos: list[PhotoInput], files: list[str]) -> list[float]:
    """Scores of one batched forward pass over the same network inputs (the pre-pool pipeline)."""
    by_name = {p.filename: p for p in photos}
    x = np.stack([a.model_input(by_name[f].data) for f in files])
    out: ModelOutputs = a.model.run(x)
    return [round(float(z), 5) for z in out.logits]


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped model")
def test_shipped_model_pool_and_sequential_give_identical_assessments(mixed: list[PhotoInput]) -> None:
    one = _assessor(1)
    pooled = _assessor(4, ort_max_concurrent_runs=0)  # every photo's run may overlap the others'
    assert one.threads == 1 and pooled.threads == 4
    expected = one.assess(mixed).model_dump_json()
    _check_mixed_result_shape(expected, mixed)
    for _ in range(2):  # photos finish in a different order from run to run
        assert pooled.assess(mixed).model_dump_json() == expected
    r = pooled.assess(mixed)
    scored = [p for p in r.photos if p.logit is not None]
    assert [p.logit for p in scored] == _batched_logits(one, mixed, [p.file for p in scored])


@pytest.mark.parametrize(("threads", "runs"), [(2, 1), (2, 2), (4, 0)])
def test_tiny_model_pool_and_sequential_give_identical_assessments(
    tiny: Path, mixed: list[PhotoInput], threads: int, runs: int
) -> None:
    expected = _assessor(1, weights_dir=tiny).assess(mixed).model_dump_json()
    _check_mixed_result_shape(expected, mixed)
    got = _assessor(threads, weights_dir=tiny, ort_max_concurrent_runs=runs).assess(mixed)
    assert got.model_dump_json() == expected


@pytest.mark.parametrize("runs", [1, 0])
def test_heatmaps_are_the_same_with_the_pool(tiny: Path, runs: int) -> None:
    photos = _real(1, seed=8)
    one = _assessor(1, weights_dir=tiny, heatmap_grid=3).assess(photos, heatmaps=True)
    two = _assessor(2, weights_dir=tiny, heatmap_grid=3, ort_max_concurrent_runs=runs).assess(photos, heatmaps=True)
    assert one.heatmaps and set(one.heatmaps) == {p.sha256 for p in one.photos if p.logit is not None}
    assert two.heatmaps == one.heatmaps
    assert two.model_dump_json() == one.model_dump_json()


def _count_overlap(a: Assessor, monkeypatch: pytest.MonkeyPatch, barrier: threading.Barrier | None) -> list[int]:
    """Spy on the model's runs: how many were in flight at each entry (waiting at ``barrier``
    first, if given, so two runs that may overlap do)."""
    active = [0]
    seen: list[int] = []
    lock = threading.Lock()
    run = a.model.run

    def spy(batch: np.ndarray) -> ModelOutputs:
        with lock:
            active[0] += 1
            seen.append(active[0])
        try:
            if barrier is not None:
                barrier.wait()
            else:
                threading.Event().wait(0.02)  # room for another run to start, were it allowed
            return run(batch)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(a.model, "run", spy)
    return seen


@pytest.mark.parametrize("limit", [1, 2])
def test_no_more_onnxruntime_runs_at_once_than_the_limit(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    a = _assessor(4, weights_dir=tiny, ort_max_concurrent_runs=limit)
    seen = _count_overlap(a, monkeypatch, None)
    r = a.assess(_real(2, seed=2))
    assert len(seen) == sum(p.logit is not None for p in r.photos) >= 4
    assert max(seen) <= limit


def test_runs_overlap_up_to_the_limit(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().ort_max_concurrent_runs == 2
    a = _assessor(2, weights_dir=tiny)
    barrier = threading.Barrier(2, timeout=60)  # broken (and the test failed) if runs cannot overlap
    seen = _count_overlap(a, monkeypatch, barrier)
    photos = [p for p in _real(2, seed=2) if p.filename.startswith(("zhengwu", "mrdeepakk"))][:2]
    r = a.assess(photos)
    assert all(p.logit is not None for p in r.photos)
    assert sorted(seen) == [1, 2]


def _thread_names(a: Assessor, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy on ``a``: the name of the thread that decodes each photo, in call order."""
    seen: list[str] = []
    inner = a._decode_and_gate

    def spy(photo: PhotoInput) -> object:
        seen.append(threading.current_thread().name)
        return inner(photo)

    monkeypatch.setattr(a, "_decode_and_gate", spy)
    return seen


def test_photos_run_on_the_named_pool_threads(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _assessor(2, weights_dir=tiny)
    seen = _thread_names(a, monkeypatch)
    a.assess(_real(1, seed=3))
    assert len(seen) == len(SOURCES) and all(name.startswith("vision") for name in seen), seen
    # one pool per assessor, made once
    pool = a.scheduler.executor()
    a.assess(_real(1, seed=4))
    assert a.scheduler.executor() is pool


def test_sequential_setting_uses_no_pool(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _assessor(1, weights_dir=tiny)
    seen = _thread_names(a, monkeypatch)
    a.assess(_real(1, seed=3))
    assert seen == [threading.current_thread().name] * len(SOURCES)
    assert a.scheduler.executor() is None


def test_failure_rule_holds_with_the_pool(tiny: Path) -> None:
    a = _assessor(2, weights_dir=tiny)
    with pytest.raises(NoUsablePhoto) as several:  # each photo's own error, in the photos' order
        a.assess([PhotoInput("empty.jpg", b""), NOT_AN_IMAGE, NOT_AN_IMAGE])
    assert [p["reasons"] for p in several.value.details["photos"]] == [
        ["corrupt_image"],
        ["unsupported_format"],
        ["unsupported_format"],
    ]
    with pytest.raises(UnsupportedFormat):  # one photo: its own error
        a.assess([NOT_AN_IMAGE])
    r = a.assess([NOT_AN_IMAGE, *_real(1, seed=1)[:1]])
    assert [x.code for x in r.photos[0].reasons] == ["unsupported_format"]


def test_other_errors_in_a_worker_propagate(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _assessor(2, weights_dir=tiny)
    photos = _real(1, seed=6)
    calls = 0
    lock = threading.Lock()
    run = a.model.run

    def flaky(batch: np.ndarray) -> ModelOutputs:
        nonlocal calls
        with lock:
            calls += 1
            n = calls
        if n == 2:
            raise RuntimeError("onnxruntime failed")
        return run(batch)

    monkeypatch.setattr(a.model, "run", flaky)
    with pytest.raises(RuntimeError, match="onnxruntime failed"):
        a.assess(photos)
    monkeypatch.undo()
    # the pool survives a failed request
    assert a.assess(photos).model_dump_json() == _assessor(1, weights_dir=tiny).assess(photos).model_dump_json()


def test_a_forked_child_gets_a_pool_of_its_own(tiny: Path) -> None:
    """A server that forks workers after the pool was made (pre-loading) must not wait for the
    parent's threads, which the child does not have."""
    import multiprocessing

    a = _assessor(2, weights_dir=tiny)
    photos = _real(1, seed=12)
    expected = a.assess(photos).model_dump_json()
    assert a.scheduler.executor() is not None
    ctx = multiprocessing.get_context("fork")
    queue = ctx.SimpleQueue()

    def child() -> None:
        queue.put(a.assess(photos).model_dump_json())

    proc = ctx.Process(target=child)
    proc.start()
    proc.join(timeout=120)  # only a guard: a child reusing the parent's pool would wait forever
    if proc.is_alive():
        proc.kill()
    assert proc.exitcode == 0
    assert queue.get() == expected


def test_vision_threads_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    assert Settings().vision_threads == 0
    assert Settings().resolved_vision_threads == min(4, os.cpu_count() or 1)
    monkeypatch.setenv("AUTHENTICATOR_VISION_THREADS", "3")
    assert Settings().resolved_vision_threads == 3
    monkeypatch.setenv("AUTHENTICATOR_VISION_THREADS", "-1")
    with pytest.raises(ValueError):
        Settings()
