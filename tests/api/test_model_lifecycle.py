"""The model lifecycle (issue 13, points 2 and 6): promotion rule, model.promoted in the log, rollback,
GET /v1/models, datasets that follow certificates (and their revocation), the hot switch.

Models are tiny ONNX graphs of the shipped contract (different weights, different sha256); the
evaluation reports are the JSON ``authenticator model evaluate`` writes, with the numbers each test
needs (the promotion rule re-checks the numbers at ``model promote``)."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from authenticator.cli import app as cli
from authenticator.config import Settings
from authenticator.errors import EntryValidationError, PromotionRefused
from authenticator.ledger.entries import MODEL_LINEAGE_ITEM, make_entry
from authenticator.services import lifecycle
from authenticator.services.context import ServiceContext
from authenticator.services.promotion import check_promotion, eligible
from authenticator.store.keys import create_key
from tests.api_helpers import REAL, bearer, certificate_envelope, photo_files, real_photos, register_lab
from tests.model_candidates import report, tiny, write_evaluation
from tests.pg_scratch import create_scratch_schema, drop_scratch_schema

# --- the rule (pure) ------------------------------------------------------------------------------


def test_the_rule_refuses_a_worse_candidate() -> None:
    better = check_promotion(report("a" * 64, "b" * 64, (0.005, 0.3)))
    assert eligible(better)
    assert not eligible(check_promotion(report("a" * 64, "b" * 64, (0.02, 0.3))))  # false-pass above 1%
    worse_fp = check_promotion(report("a" * 64, "b" * 64, (0.009, 0.3), champ=(0.004, 0.2)))
    assert not eligible(worse_fp)  # under 1% but worse than the champion
    assert any("not worse" in c.check and not c.ok for c in worse_fp)
    lower = check_promotion(report("a" * 64, "b" * 64, (0.0, 0.1)))
    assert not eligible(lower) and any("coverage" in c.check and not c.ok for c in lower)
    assert not eligible(check_promotion({"parts": {}}))


def test_a_category_without_counterfeits_cannot_be_judged() -> None:
    doc = report("a" * 64, "b" * 64, (0.0, 0.3))
    doc["parts"]["development_cv"]["candidate"]["per_category"]["sneaker"]["n_counterfeit"] = 0
    assert not eligible(check_promotion(doc))


def test_lineage_entries_have_their_own_item() -> None:
    body = {
        "model_sha256": "b" * 64,
        "card_sha256": "c" * 64,
        "evaluation_sha256": None,
        "replaces": "a" * 64,
        "action": "rollback",
        "name": "authenticator",
        "version": "1",
    }
    assert make_entry("model.promoted", MODEL_LINEAGE_ITEM, body, None).item == "model:lineage"
    with pytest.raises(EntryValidationError):
        make_entry("model.promoted", "itm_1", body, None)
    with pytest.raises(EntryValidationError):
        make_entry("item.registered", MODEL_LINEAGE_ITEM, {}, None)


# --- promote, rollback, GET /v1/models --------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Settings, str, Path, str]]:
    """Settings serving tiny model A (shipped), and candidate B in a folder of its own; SQLite or a
    fresh PostgreSQL schema."""
    _, sha_a = tiny(tmp_path / "weights", seed=0)
    card_b, sha_b = tiny(tmp_path / "candidate", seed=1)
    if request.param == "sqlite":
        yield (
            Settings(data_dir=tmp_path / "data", weights_dir=tmp_path / "weights", database_url=None),
            sha_a,
            card_b.parent,
            sha_b,
        )
        return
    schema, url = create_scratch_schema("t_lifecycle")
    try:
        yield (
            Settings(data_dir=tmp_path / "data", weights_dir=tmp_path / "weights", database_url=url),
            sha_a,
            card_b.parent,
            sha_b,
        )
    finally:
        drop_scratch_schema(schema)


def test_promote_refuses_a_worse_candidate_and_appends_nothing(deployment: tuple[Settings, str, Path, str]) -> None:
    settings, sha_a, cand, sha_b = deployment
    ev = write_evaluation(cand, report(sha_a, sha_b, (0.03, 0.5)))
    ctx = ServiceContext.open(settings, load_model=False)
    try:
        size = ctx.ledger.size()
        with pytest.raises(PromotionRefused, match="false-pass"):
            lifecycle.promote(ctx, cand, ev)
        assert ctx.ledger.size() == size
        assert lifecycle.serving_sha256(ctx) == sha_a
        # evaluated against another model than the serving one: refused too
        write_evaluation(cand, report("f" * 64, sha_b, (0.0, 0.5)))
        with pytest.raises(PromotionRefused, match="serving model"):
            lifecycle.promote(ctx, cand, ev)
        with pytest.raises(PromotionRefused, match="nothing to roll back"):
            lifecycle.rollback(ctx)
    finally:
        ctx.close()


def test_promote_rollback_and_the_models_list(deployment: tuple[Settings, str, Path, str]) -> None:
    settings, sha_a, cand, sha_b = deployment
    write_evaluation(cand, report(sha_a, sha_b, (0.004, 0.35)))
    runner = CliRunner()
    env = {"AUTHENTICATOR_DATA_DIR": str(settings.data_dir), "AUTHENTICATOR_WEIGHTS_DIR": str(settings.weights_dir)}
    if settings.database_url:
        env["AUTHENTICATOR_DATABASE_URL"] = settings.database_url
    res = runner.invoke(cli, ["model", "promote", str(cand)], env=env)
    assert res.exit_code == 0, res.output
    promoted = json.loads(res.output)
    assert promoted["replaces"] == sha_a and promoted["action"] == "promotion"
    assert (settings.resolved_models_dir / sha_b / "authenticator.onnx").is_file()
    assert (settings.resolved_models_dir / sha_b / "evaluation" / "report.json").is_file()
    with TestClient(create_app(settings)) as client:
        assert client.app.state.ctx.assessor.model_sha256 == sha_b  # type: ignore[attr-defined]
        models = {m["sha256"]: m for m in client.get("/v1/models").json()}
        assert models[sha_b]["status"] == "serving" and models[sha_a]["status"] == "retired"
        assert models[sha_b]["lineage"][0]["replaces"] == sha_a
        assert models[sha_b]["evaluation"]["against"] == sha_a
    res = runner.invoke(cli, ["model", "promote", str(cand)], env=env)
    assert res.exit_code == 2 and "already serves" in res.output
    res = runner.invoke(cli, ["model", "rollback"], env=env)
    assert res.exit_code == 0, res.output
    back = json.loads(res.output)
    assert back["model_sha256"] == sha_a and back["replaces"] == sha_b and back["action"] == "rollback"
    ctx = ServiceContext.open(settings, load_model=False)
    try:
        assert lifecycle.serving_sha256(ctx) == sha_a
        status = lifecycle.statuses(ctx)
        assert status[sha_b].status == "retired" and status[sha_a].status == "serving"
        assert [e.action for e in status[sha_a].lineage] == ["promotion", "rollback"]
        history = ctx.ledger.history(MODEL_LINEAGE_ITEM)
        assert [json.loads(h.data)["type"] for h in history] == ["model.promoted", "model.promoted"]
    finally:
        ctx.close()


def test_an_idle_worker_switches_without_a_request(tmp_path: Path) -> None:
    """The model watcher: a promotion reaches a worker that answers no request (it loads the new
    model before its next request), and a rollback too; with the watcher off it waits for one."""
    _, sha_a = tiny(tmp_path / "weights", seed=0)
    card_b, sha_b = tiny(tmp_path / "candidate", seed=1)
    ev = write_evaluation(card_b.parent, report(sha_a, sha_b, (0.004, 0.35)))
    settings = Settings(
        data_dir=tmp_path / "data", weights_dir=tmp_path / "weights", database_url=None, model_watch_seconds=0.05
    )

    def wait_until(ctx: ServiceContext, sha: str) -> None:
        deadline = time.monotonic() + 60
        while ctx.assessor is None or ctx.assessor.model_sha256 != sha:
            assert time.monotonic() < deadline, "the idle worker never switched"
            time.sleep(0.02)

    with TestClient(create_app(settings)) as client:
        worker = client.app.state.ctx  # type: ignore[attr-defined]
        assert worker.assessor.model_sha256 == sha_a
        admin = ServiceContext.open(settings, load_model=False)  # another process's view: the CLI
        try:
            lifecycle.promote(admin, card_b.parent, ev)
            wait_until(worker, sha_b)  # no request was sent to this app meanwhile
            lifecycle.rollback(admin)
            wait_until(worker, sha_a)
        finally:
            admin.close()
    with TestClient(create_app(settings.model_copy(update={"model_watch_seconds": 0.0}))) as client:
        worker = client.app.state.ctx  # type: ignore[attr-defined]
        admin = ServiceContext.open(settings, load_model=False)
        try:
            lifecycle.promote(admin, card_b.parent, ev)
            time.sleep(0.5)
            assert worker.assessor.model_sha256 == sha_a  # off: the next request switches it
            assert client.get("/v1/models").status_code == 200
        finally:
            admin.close()


# --- datasets follow the labs --------------------------------------------------------------------


def test_a_revoked_certificate_removes_its_item_from_the_next_dataset(tmp_path: Path) -> None:
    from training.export_dataset import export_dataset
    from training.lifecycle import build_dataset, held_back

    card, _ = tiny(tmp_path / "weights", seed=0)
    settings = Settings(data_dir=tmp_path / "data", weights_dir=card.parent, database_url=None)
    dev = tmp_path / "dev.csv"
    rows = list(csv.DictReader((REAL / "manifest.csv").open()))
    with dev.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in [r for r in rows if r["path"].startswith("mrdeepakk-nike")][:40]:
            w.writerow({**r, "path": str(REAL / r["path"])})
    with TestClient(create_app(settings)) as client:
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        admin = create_key(ctx.engine, "admin", "ops").api_key
        platform = client.post("/v1/keys", json={"role": "platform", "name": "Shop"}, headers=bearer(admin)).json()
        lab, lab_id, lab_key = register_lab(client, admin, "Lab")
        items, certs = [], []
        for i in range(12):  # enough items that some train and some are held back
            item = client.post(
                "/v1/items",
                json={"category": "sneaker", "brand": "Nike", "model": "Air Force 1"},
                headers=bearer(platform["api_key"]),
            ).json()["id"]
            photos = photo_files(real_photos(1, offset=i))
            assert (
                client.post(
                    f"/v1/items/{item}/assessments", files=photos, headers=bearer(platform["api_key"])
                ).status_code
                == 201
            )
            env = certificate_envelope(lab_key, item, lab_id, outcome="counterfeit" if i % 2 else "authentic")
            r = client.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(lab))
            assert r.status_code == 201, r.text
            items.append(item)
            certs.append(r.json()["id"])

        def dataset(name: str) -> set[str]:
            export_dataset(ctx.ledger, ctx.blobs, tmp_path / name / "certified")
            build_dataset(dev, tmp_path / name / "certified" / "manifest.csv", tmp_path / name, min_items_per_label=1)
            found = set()
            for part in ("manifest.csv", "held_back.csv"):
                found |= {r["item_group"] for r in csv.DictReader((tmp_path / name / part).open())}
            return found

        first = dataset("first")
        assert set(items) <= first
        counts = json.loads((tmp_path / "first" / "dataset.json").read_text())
        assert counts["certified_training"]["per_lab"] or counts["certified_held_back"]["per_lab"]
        trained = {r["item_group"] for r in csv.DictReader((tmp_path / "first" / "manifest.csv").open())}
        assert {i for i in items if held_back(i)}.isdisjoint(trained)  # the held-back slice never trains
        revoke = client.post(
            f"/v1/certificates/{certs[0]}/revocation", json={"reason": "re-examined"}, headers=bearer(lab)
        )
        assert revoke.status_code == 201, revoke.text
        second = dataset("second")
        assert items[0] not in second and set(items[1:]) <= second


def test_the_dataset_refuses_below_the_minimum(tmp_path: Path) -> None:
    from authenticator.errors import DatasetTooSmall
    from training.lifecycle import build_dataset

    dev = tmp_path / "dev.csv"
    rows = list(csv.DictReader((REAL / "manifest.csv").open()))[:6]
    with dev.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "path": str(REAL / r["path"])} for r in rows)
    with pytest.raises(DatasetTooSmall, match="at least 20 items"):
        build_dataset(dev, None, tmp_path / "ds")
    with pytest.raises(DatasetTooSmall, match="lab-certified items"):
        build_dataset(dev, None, tmp_path / "ds", min_items_per_label=0, min_certified_items=1)
