"""The assessment service end to end with a tiny ONNX model of the same contract (no torch).

Real development photos go through decode, the gate, onnxruntime and the decision rules.
"""

from __future__ import annotations

import csv
import io
import json
import random
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from authenticator.cli import app
from authenticator.config import Settings
from authenticator.errors import InvalidInput, ModelError, NoUsablePhoto, UnsupportedFormat
from authenticator.ledger.entry_types import Thresholds
from authenticator.vision.card import ModelCard
from authenticator.vision.decision import calibrate
from authenticator.vision.phash import MAX_REUSE_MATCHES, InMemoryPhotoReuseIndex
from authenticator.vision.preprocess import preprocess
from authenticator.vision.service import Assessor, PhotoInput
from tests.vision_tiny_model import write_tiny_model
from training.calibrate_gate import darken

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
ROWS = list(csv.DictReader((REAL / "manifest.csv").open()))


def _photos(n: int, seed: int, source: str | None = None) -> list[PhotoInput]:
    rows = [r for r in ROWS if source is None or r["path"].startswith(source)]
    picked = random.Random(seed).sample(rows, n)
    return [PhotoInput(filename=r["path"], data=(REAL / r["path"]).read_bytes()) for r in picked]


def _assessor(folder: Path, **settings: object) -> Assessor:
    return Assessor.from_settings(Settings(weights_dir=folder, **settings))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(1)
    write_tiny_model(folder, bank=(rng.normal(size=(20, 16)), ["sneaker"] * 15 + ["bag"] * 5))
    return folder


def test_real_photos_get_a_decision(tiny: Path) -> None:
    a = _assessor(tiny)
    photos = _photos(24, seed=7)
    for i in range(0, 24, 4):
        r = a.assess(photos[i : i + 4])
        assert r.decision in ("authentic", "counterfeit", "inconclusive")
        assert r.model.sha256 == a.model_sha256 and r.model.version == "test-tiny"
        assert r.thresholds.authentic_above == 0.8
        scored = [p for p in r.photos if p.probability_authentic is not None]
        assert scored, [p.reasons for p in r.photos]
        for p in scored:
            assert 0.0 < p.probability_authentic < 1.0  # type: ignore[operator]
            assert p.category in ("sneaker", "bag") and p.quality is not None and len(p.phash or "") == 16
        if r.decision != "inconclusive" or r.reasons[-1].code == "uncertain_score":
            assert r.probability_authentic is not None
            expected = 1 / (1 + np.exp(-np.mean([p.logit for p in scored]) / 1.5))
            assert r.probability_authentic == pytest.approx(expected, abs=1e-4)


def test_decision_follows_the_thresholds(tiny: Path) -> None:
    a = _assessor(tiny)
    seen = set()
    for p in _photos(30, seed=3):
        r = a.assess([p])
        if r.probability_authentic is None:
            continue
        prob = r.probability_authentic
        want = "authentic" if prob > 0.8 else "counterfeit" if prob < 0.2 else "inconclusive"
        assert r.decision == want
        seen.add(want)
    assert len(seen) >= 2


def test_undecodable_photo_among_good_ones_is_reported_per_photo(tiny: Path) -> None:
    good = _photos(2, seed=11, source="zhengwu123-aj1")
    bad = PhotoInput(filename="notes.jpg", data=b"just text, renamed\n" * 10)
    r = _assessor(tiny).assess([*good, bad])
    assert r.photos[2].file == "notes.jpg"
    assert [x.code for x in r.photos[2].reasons] == ["unsupported_format"]
    assert r.photos[2].probability_authentic is None and r.photos[2].sha256
    assert any(p.probability_authentic is not None for p in r.photos[:2])


def test_only_undecodable_photos_raise_the_typed_error(tiny: Path) -> None:
    a = _assessor(tiny)
    with pytest.raises(UnsupportedFormat):
        a.assess([PhotoInput("a.jpg", b"text" * 50)])
    with pytest.raises(NoUsablePhoto) as several:  # several: each named, with its own code
        a.assess([PhotoInput("empty.jpg", b""), PhotoInput("b.jpg", b"text" * 50)])
    assert several.value.details["photos"] == [
        {"file": "empty.jpg", "reasons": ["corrupt_image"]},
        {"file": "b.jpg", "reasons": ["unsupported_format"]},
    ]
    with pytest.raises(InvalidInput):
        a.assess([])


def test_no_usable_photo_is_inconclusive(tiny: Path) -> None:
    photo = _photos(1, seed=5, source="zhengwu123-aj1")[0]
    rgb = np.asarray(Image.open(io.BytesIO(photo.data)).convert("RGB"))
    dark, _ = darken(rgb, None)
    buf = io.BytesIO()
    Image.fromarray(dark).save(buf, "JPEG", quality=92)
    r = _assessor(tiny).assess([PhotoInput("dark.jpg", buf.getvalue())])
    assert r.decision == "inconclusive" and r.probability_authentic is None
    assert [x.code for x in r.reasons] == ["no_usable_photo"]
    assert "underexposed" in [x.code for x in r.photos[0].reasons]
    assert r.photos[0].probability_authentic is None


def test_unfamiliar_photo_is_unsupported_object(tmp_path: Path) -> None:
    """Nothing familiar to the bank and no ImageNet class of ours: never a verdict."""
    write_tiny_model(
        tmp_path,
        bank=(np.eye(16)[:4], ["bag"] * 4),
        ood={"distance_threshold": -1.0, "imagenet_min_prob": 1.1},
    )
    r = _assessor(tmp_path).assess(_photos(2, seed=2, source="zhengwu123-aj1"))
    assert r.decision == "inconclusive" and r.probability_authentic is None
    assert [x.code for x in r.reasons] == ["unsupported_object"]
    for p in r.photos:
        if p.probability_authentic is not None:
            assert p.category is None and "unsupported_object" in [x.code for x in p.reasons]


def test_unfamiliar_photos_are_left_out_of_the_verdict(tmp_path: Path) -> None:
    """The unfamiliar-photo gate the card's safety figures assume: a photo farther from the bank
    than the threshold keeps its own score as evidence but does not count towards the verdict;
    with no familiar photo left the item is inconclusive. The setting turns it off."""
    every_class = {"sneaker": list(range(1000))}  # ImageNet always says sneaker: only the gate differs
    write_tiny_model(tmp_path / "probe", ood={"imagenet_category_classes": every_class})
    probe = _assessor(tmp_path / "probe")
    a_photo, b_photo = _photos(2, seed=11, source="mrdeepakk-nike")
    emb_a = probe.model.run(probe.model_input(a_photo.data)[None]).embeddings
    emb_b = probe.model.run(probe.model_input(b_photo.data)[None]).embeddings
    assert emb_a is not None and emb_b is not None
    cos = float(emb_a[0] @ emb_b[0] / (np.linalg.norm(emb_a[0]) * np.linalg.norm(emb_b[0])))
    d_b = 1.0 - cos  # B's distance to a bank that holds only A
    assert d_b > 1e-3
    folder = tmp_path / "gated"
    write_tiny_model(
        folder,
        bank=(emb_a, ["sneaker"]),
        ood={"imagenet_category_classes": every_class, "distance_threshold": d_b / 2},
        thresholds=(0.999, 0.001),
    )
    gated = _assessor(folder)
    both = gated.assess([a_photo, b_photo])
    pa, pb = both.photos
    assert [x.code for x in pa.reasons] == [] and [x.code for x in pb.reasons] == ["unfamiliar_photo"]
    assert pb.probability_authentic is not None  # still shown as evidence
    assert both.probability_authentic == pytest.approx(calibrate(pa.logit or 0.0, 1.5), abs=1e-5)
    assert [x.code for x in both.reasons] == ["uncertain_score"]

    only_b = gated.assess([b_photo])
    assert only_b.decision == "inconclusive" and only_b.probability_authentic is None
    assert [x.code for x in only_b.reasons] == ["unfamiliar_photo"] and only_b.category == "sneaker"

    off = _assessor(folder, unfamiliar_photo_gate=False).assess([a_photo, b_photo])
    assert all(x.code != "unfamiliar_photo" for p in off.photos for x in p.reasons)
    mean = (float(pa.logit or 0.0) + float(pb.logit or 0.0)) / 2
    assert off.probability_authentic == pytest.approx(calibrate(mean, 1.5), abs=1e-5)


def test_category_threshold_is_looser_than_the_unfamiliar_gate(tmp_path: Path) -> None:
    """Two thresholds on one distance: a photo between them is recognised as our goods (the bank's
    category, no ImageNet help) yet left out of the verdict by the safety gate."""
    write_tiny_model(tmp_path / "probe")
    probe = _assessor(tmp_path / "probe")
    a_photo, b_photo = _photos(2, seed=11, source="mrdeepakk-nike")
    emb = [probe.model.run(probe.model_input(p.data)[None]).embeddings for p in (a_photo, b_photo)]
    assert emb[0] is not None and emb[1] is not None
    d_b = 1.0 - float(emb[0][0] @ emb[1][0] / (np.linalg.norm(emb[0][0]) * np.linalg.norm(emb[1][0])))
    folder = tmp_path / "two"
    write_tiny_model(
        folder,
        bank=(emb[0], ["sneaker"]),
        ood={"distance_threshold": d_b / 2, "category_distance_threshold": d_b * 2, "imagenet_min_prob": 1.1},
    )
    r = _assessor(folder).assess([a_photo, b_photo])
    pa, pb = r.photos
    assert pa.category == pb.category == "sneaker"  # from the bank: ImageNet can never reach 1.1
    assert [x.code for x in pb.reasons] == ["unfamiliar_photo"] and not pa.reasons
    assert r.probability_authentic == pytest.approx(calibrate(pa.logit or 0.0, 1.5), abs=1e-5)
    # settings override each threshold on its own
    loose_gate = _assessor(folder, ood_distance_threshold=d_b * 2).assess([a_photo, b_photo])
    assert all(not p.reasons for p in loose_gate.photos)
    strict_category = _assessor(folder, ood_category_distance_threshold=d_b / 2).assess([b_photo])
    assert strict_category.photos[0].category is None
    assert [x.code for x in strict_category.reasons] == ["unsupported_object"]


def test_unvalidated_category_is_inconclusive_unless_enabled(tmp_path: Path) -> None:
    write_tiny_model(tmp_path, bank=(np.ones((3, 16)), ["watch"] * 3), validated=("bag", "sneaker"))
    photos = _photos(2, seed=9, source="zhengwu123-aj1")
    r = _assessor(tmp_path).assess(photos)
    assert r.category == "watch" and r.decision == "inconclusive"
    assert [x.code for x in r.reasons] == ["category_not_validated"]
    enabled = _assessor(tmp_path, enable_unvalidated_categories=True).assess(photos)
    assert enabled.probability_authentic is not None
    assert "category_not_validated" not in [x.code for x in enabled.reasons]


def test_reused_photo_is_flagged(tiny: Path) -> None:
    a = _assessor(tiny)
    index = InMemoryPhotoReuseIndex(max_distance=Settings().phash_max_hamming)
    original = _photos(1, seed=21, source="zhengwu123-aj1")[0]
    first = a.assess([original], item_id="item-A", reuse_index=index)
    assert not first.photos[0].reused_from
    assert len(index) == 0  # assess() only reads; the caller remembers once the verdict is recorded
    Assessor.remember(first, "item-A", index)
    # the same photo for the same item again (a re-assessment) is not reuse
    again = a.assess([original], item_id="item-A", reuse_index=index)
    assert not again.photos[0].reused_from
    # the scammer re-encodes and shrinks the photo for another listing
    img = Image.open(io.BytesIO(original.data)).convert("RGB")
    img = img.resize((img.width * 3 // 4, img.height * 3 // 4))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    other = _photos(1, seed=22, source="alauzon13-birkin")[0]
    r = a.assess([PhotoInput("copy.jpg", buf.getvalue()), other], item_id="item-B", reuse_index=index)
    assert [m.item_id for m in r.photos[0].reused_from] == ["item-A"]
    assert r.photos[0].reused_from[0].photo_sha256 == first.photos[0].sha256
    assert "photo_reused" in [x.code for x in r.photos[0].reasons]
    assert "photo_reused" in [x.code for x in r.reasons]
    assert r.decision != "authentic"
    assert not r.photos[1].reused_from


def test_a_widely_shared_photo_lists_only_its_closest_matches(tiny: Path) -> None:
    """A stock photo that many listings share: the answer names the closest MAX_REUSE_MATCHES
    matches, not every one (found with 5,000 shared rows: a 750 kB response, 17 ms of lookup)."""
    a = _assessor(tiny)
    photo = _photos(1, seed=23, source="zhengwu123-aj1")[0]
    h = int(a.assess([photo]).photos[0].phash or "", 16)
    index = InMemoryPhotoReuseIndex(max_distance=Settings().phash_max_hamming)
    for k in range(3 * MAX_REUSE_MATCHES):  # "a-…" items one bit away, then "z-…" items exact copies
        index.add(h ^ 1, f"a-{k:03d}", f"{k:064x}")
    for k in range(5):
        index.add(h, f"z-{k}", f"{k:064x}")
    r = a.assess([photo], item_id="mine", reuse_index=index)
    listed = r.photos[0].reused_from
    assert len(listed) == MAX_REUSE_MATCHES
    assert [m.item_id for m in listed[:5]] == [f"z-{k}" for k in range(5)]  # exact copies first
    assert [m.distance for m in listed] == [0] * 5 + [1] * (MAX_REUSE_MATCHES - 5)
    assert [m.item_id for m in listed[5:]] == [f"a-{k:03d}" for k in range(MAX_REUSE_MATCHES - 5)]
    assert "z-0" in next(x.message for x in r.photos[0].reasons if x.code == "photo_reused")
    assert r.decision != "authentic"


def test_heatmaps_are_pngs_of_what_the_model_saw(tiny: Path) -> None:
    photos = _photos(2, seed=13, source="zhengwu123-aj1")
    r = _assessor(tiny).assess(photos, heatmaps=True)
    scored = [p for p in r.photos if p.probability_authentic is not None]
    assert set(r.heatmaps) == {p.sha256 for p in scored}
    for png in r.heatmaps.values():
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and img.size == (64, 64)
    assert "heatmaps" not in json.loads(r.model_dump_json())


def test_model_file_must_match_its_card(tmp_path: Path) -> None:
    write_tiny_model(tmp_path)
    onnx_path = tmp_path / "authenticator.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    with pytest.raises(ModelError):
        _assessor(tmp_path)


def test_a_card_with_thresholds_the_log_would_refuse_does_not_load(tmp_path: Path) -> None:
    """The card's thresholds are the log's own schema (one definition): a pair that no
    ``assessment.recorded`` entry could carry is refused when the card loads, not at the first verdict."""
    card_path = write_tiny_model(tmp_path)
    assert ModelCard.load(card_path).thresholds == Thresholds(authentic_above=0.8, counterfeit_below=0.2)
    unordered, out_of_range = (0.2, 0.6), (1.5, 0.1)
    for above, below in (unordered, out_of_range):
        card = json.loads(card_path.read_text())
        card["thresholds"] = {"authentic_above": above, "counterfeit_below": below}
        card_path.write_text(json.dumps(card))
        with pytest.raises(ModelError, match="thresholds"):
            ModelCard.load(card_path)


def test_one_session_per_process(tiny: Path) -> None:
    assert _assessor(tiny) is _assessor(tiny)


def test_concurrent_assessments_agree(tiny: Path) -> None:
    a = _assessor(tiny)
    groups = [_photos(3, seed=s) for s in range(4)]
    expected = [a.assess(g).model_dump() for g in groups]
    got: dict[int, dict[str, object]] = {}

    def work(i: int) -> None:
        got[i] = a.assess(groups[i]).model_dump()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(4)] == expected


def test_preprocessing_parity_with_training(tiny: Path) -> None:
    """The tensor serving builds equals the one training builds (training.data's decode path).

    Exact for every photo with reduced JPEG decoding off; with it on (the default), exact for
    photos under twice the reduction size and within JPEG-scaling noise above it.
    """
    from training.data import decode_sample, read_manifest

    samples = [s for s in read_manifest(REAL / "manifest.csv") if s.source in ("alauzon13-birkin", "zhengwu123-aj1")]
    exact = _assessor(tiny, vision_reduced_decode=False)
    reduced = _assessor(tiny)
    spec = exact.card.preprocessing
    for s in random.Random(0).sample(samples, 8):
        d = decode_sample(s)
        train = preprocess(d.rgb, d.alpha, spec)
        assert np.array_equal(exact.model_input(s.path.read_bytes()), train), s.path
        served = reduced.model_input(s.path.read_bytes())
        if max(d.width, d.height) < 2 * (reduced.reduce_to or 0):
            assert np.array_equal(served, train), s.path
        else:
            assert np.abs(served - train).mean() < 0.02, s.path


def test_cli_json(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHENTICATOR_WEIGHTS_DIR", str(tiny))
    files = [str(REAL / p.filename) for p in _photos(2, seed=17, source="zhengwu123-aj1")]
    res = CliRunner().invoke(app, ["assess", *files, "--json", "--heatmaps", str(tmp_path / "maps")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {"decision", "probability_authentic", "category", "reasons", "photos", "model"} <= set(doc)
    assert set(doc["model"]) == {"name", "version", "sha256"}
    for p in doc["photos"]:
        assert {"file", "probability_authentic", "category", "reasons"} <= set(p)
    assert list((tmp_path / "maps").glob("*.png"))


def test_cli_exit_codes(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHENTICATOR_WEIGHTS_DIR", str(tiny))
    text = tmp_path / "fake.jpg"
    text.write_text("not a photo")
    res = CliRunner().invoke(app, ["assess", str(text)])
    assert res.exit_code == 2 and "unsupported_format" in res.output
    dark = tmp_path / "dark.png"
    Image.new("RGB", (400, 300), (3, 3, 3)).save(dark)
    res = CliRunner().invoke(app, ["assess", str(dark)])
    assert res.exit_code == 0 and "inconclusive" in res.output  # a decision, even if it is "retake"
    monkeypatch.setenv("AUTHENTICATOR_WEIGHTS_DIR", str(tmp_path / "nothing"))
    res = CliRunner().invoke(app, ["assess", str(dark)])
    assert res.exit_code == 1 and "model_error" in res.output


def test_chunked_batches_give_the_same_scores(tiny: Path) -> None:
    """Assessments score each photo on its own; ``ort_max_batch`` chunks the heat maps' runs."""
    photos = _photos(5, seed=31)
    one_a, many_a = _assessor(tiny, ort_max_batch=1), _assessor(tiny, ort_max_batch=8)
    one, many = one_a.assess(photos), many_a.assess(photos)
    assert [p.logit for p in one.photos] == pytest.approx([p.logit for p in many.photos], abs=1e-4)
    assert one.decision == many.decision
    x = np.stack([one_a.model_input(p.data) for p in photos])
    assert one_a._occlusion_logits(x) == pytest.approx(many_a._occlusion_logits(x), abs=1e-4)
    assert one_a._occlusion_logits(x) == pytest.approx(one_a.model.run(x).logits, abs=1e-4)
