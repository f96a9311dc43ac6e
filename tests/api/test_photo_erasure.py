"""Photos a seller can take back, over HTTP through the real app, on SQLite and on PostgreSQL.

``DELETE /v1/assessments/{id}/photos`` deletes the photos and heat maps from the blob store
(the files on disk), the reuse index forgets them, ``photos.erased`` is appended, and every
proof still verifies (``verify_ledger``, ``verify_trace`` and ``authenticator trace verify``);
erasing again appends nothing. The retention purge (``authenticator photos purge``) erases old
photos the same way. Each test uses photos of its own, so no two tests share a blob.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from authenticator.cli import app as cli_app
from authenticator.config import Settings
from authenticator.db import read_tx
from authenticator.ledger.checkpoint import verify_checkpoint
from authenticator.ledger.entries import parse_entry
from authenticator.ledger.merkle import hash_leaf, verify_inclusion
from authenticator.ledger.verify import verify_ledger
from authenticator.services.context import ServiceContext
from authenticator.services.erasure import purge_older_than
from authenticator.store.tables import heatmaps, photo_hashes
from authenticator.trace_verify import verify_trace
from tests.api_helpers import Actors, bearer, certificate_envelope, new_item, photo_files, real_photos

CLI = [str(Path(sys.executable).parent / "authenticator")]


def b64d(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def ctx_of(client: TestClient) -> ServiceContext:
    ctx: ServiceContext = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def blob_file(settings: Settings, sha: str) -> Path:
    return settings.blob_dir / sha[:2] / sha[2:4] / sha


def log_size(client: TestClient) -> int:
    return ctx_of(client).ledger.size()


def check_receipt(receipt: dict[str, Any], verifier_key: str) -> dict[str, Any]:
    """The receipt's entry is in the tree its signed checkpoint names; the parsed entry."""
    cp = verify_checkpoint(receipt["checkpoint"], verifier_key)
    data = b64d(receipt["entry"])
    leaf = hash_leaf(data)
    assert base64.b64encode(leaf).decode() == receipt["leaf_hash"]
    verify_inclusion(receipt["index"], cp.size, leaf, [b64d(h) for h in receipt["inclusion_proof"]], cp.root_hash)
    return parse_entry(data).to_dict()


def assess(client: TestClient, platform: str, item: str, photos: list[Path], *, heatmaps: bool = False) -> Any:
    r = client.post(
        f"/v1/items/{item}/assessments",
        files=photo_files(photos),
        params={"heatmaps": "true"} if heatmaps else None,
        headers=bearer(platform),
    )
    assert r.status_code == 201, r.text
    return r.json()


def erase(client: TestClient, key: str, assessment_id: str, **params: str) -> Any:
    return client.delete(f"/v1/assessments/{assessment_id}/photos", params=params or None, headers=bearer(key))


def reuse_rows(client: TestClient, item: str) -> set[str]:
    with read_tx(ctx_of(client).engine) as conn:
        return set(conn.execute(select(photo_hashes.c.photo_sha256).where(photo_hashes.c.item_id == item)).scalars())


def test_erase_every_photo_keeps_every_proof(
    client: TestClient, actors: Actors, api_settings: Settings, tmp_path: Path
) -> None:
    vkey = client.get("/v1/log/key").json()["verifier_key"]
    item = new_item(client, actors.platform)
    verdict = assess(client, actors.platform, item, real_photos(2, offset=20), heatmaps=True)
    aid = verdict["id"]
    shas = [p["sha256"] for p in verdict["photos"]]
    maps = [p["heatmap_url"] for p in verdict["photos"]]
    assert all(maps)
    with read_tx(ctx_of(client).engine) as conn:
        pngs = set(conn.execute(select(heatmaps.c.png_sha256).where(heatmaps.c.assessment_id == aid)).scalars())
    assert len(pngs) == 2 and all(blob_file(api_settings, s).is_file() for s in [*shas, *pngs])
    assert reuse_rows(client, item) == set(shas)

    before = log_size(client)
    r = erase(client, actors.platform, aid, reason="seller request")
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["assessment_id"] == aid and record["item_id"] == item
    assert record["photo_sha256"] == shas and record["reason"] == "seller request"
    assert record["index"] == before and log_size(client) == before + 1
    entry = check_receipt(record["receipt"], vkey)
    assert entry["type"] == "photos.erased" and entry["item"] == item and entry["time"] == record["erased_at"]
    assert entry["body"] == {"assessment_id": aid, "photo_sha256": shas, "by": record["by"], "reason": "seller request"}

    # Gone from disk, from every endpoint, and from the reuse index.
    assert not any(blob_file(api_settings, s).exists() for s in [*shas, *pngs])
    for sha, heatmap_url in zip(shas, maps, strict=True):
        assert client.get(f"/v1/assessments/{aid}/photos/{sha}", headers=bearer(actors.platform)).status_code == 404
        assert client.get(heatmap_url, headers=bearer(actors.platform)).status_code == 404
    assert reuse_rows(client, item) == set()
    shown = client.get(f"/v1/assessments/{aid}").json()
    assert [(p["erased"], p["erased_at"], p["heatmap_url"]) for p in shown["photos"]] == [
        (True, record["erased_at"], None)
    ] * 2
    assert shown["decision"] == verdict["decision"] and [p["sha256"] for p in shown["photos"]] == shas
    check_receipt(shown["receipt"], vkey)  # the verdict's own entry still proves

    # A second erase is idempotent: the first record, no second entry.
    again = erase(client, actors.platform, aid)
    assert again.status_code == 200, again.text
    assert {k: v for k, v in again.json().items() if k != "receipt"} == {
        k: v for k, v in record.items() if k != "receipt"
    }
    check_receipt(again.json()["receipt"], vkey)
    assert log_size(client) == before + 1

    # The log, the trace and the page: everything still verifies; the page says when.
    report = verify_ledger(ctx_of(client).ledger, workers=1)
    assert report.ok and not report.warnings, report.to_dict()
    trace = client.get(f"/v1/items/{item}/trace").json()
    assert [parse_entry(b64d(e["entry"])).type for e in trace["events"]] == [
        "item.registered",
        "assessment.recorded",
        "photos.erased",
    ]
    assert verify_trace(trace, vkey).ok
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(trace))
    res = subprocess.run(
        [*CLI, "trace", "verify", str(path), "--key", vkey], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "trace verified" in res.stdout
    page = client.get(f"/t/{item}")
    assert page.status_code == 200
    day = datetime.strptime(record["erased_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert f"Photos erased on {day.day} {day:%b %Y}" in page.text


def test_one_photo_then_the_rest(client: TestClient, actors: Actors, api_settings: Settings) -> None:
    item = new_item(client, actors.platform)
    verdict = assess(client, actors.platform, item, real_photos(2, offset=23))
    aid, (first, second) = verdict["id"], [p["sha256"] for p in verdict["photos"]]
    url = f"/v1/assessments/{aid}/photos"

    assert erase(client, actors.platform, "asm_nope").status_code == 404
    assert erase(client, actors.platform, aid, sha256="ab" * 32).status_code == 404
    assert erase(client, actors.platform, aid, sha256="not-a-hash").status_code == 422
    assert erase(client, actors.platform, aid, reason="bidi \u202e text").status_code == 422

    before = log_size(client)
    one = erase(client, actors.platform, aid, sha256=first)
    assert one.status_code == 200, one.text
    assert one.json()["photo_sha256"] == [first]
    assert not blob_file(api_settings, first).exists() and blob_file(api_settings, second).is_file()
    assert client.get(f"{url}/{first}", headers=bearer(actors.platform)).status_code == 404
    assert client.get(f"{url}/{second}", headers=bearer(actors.platform)).status_code == 200
    assert [p["erased"] for p in client.get(f"/v1/assessments/{aid}").json()["photos"]] == [True, False]
    assert reuse_rows(client, item) == {second}

    # "All" now erases what is left, once; the same key answers the same record.
    rest = client.delete(url, headers={**bearer(actors.platform), "Idempotency-Key": "erase-rest-1"})
    assert rest.status_code == 200, rest.text
    assert rest.json()["photo_sha256"] == [second] and rest.json()["index"] == before + 1
    replay = client.delete(url, headers={**bearer(actors.platform), "Idempotency-Key": "erase-rest-1"})
    assert replay.status_code == 200 and replay.json()["index"] == before + 1
    assert erase(client, actors.platform, aid, sha256=first).json()["index"] == before
    assert erase(client, actors.platform, aid).json()["index"] == before + 1
    assert log_size(client) == before + 2
    assert not blob_file(api_settings, second).exists()
    assert verify_ledger(ctx_of(client).ledger, workers=1).ok


def test_concurrent_erases_append_one_entry(client: TestClient, actors: Actors, api_settings: Settings) -> None:
    item = new_item(client, actors.platform)
    verdict = assess(client, actors.platform, item, real_photos(2, offset=36))
    url = f"/v1/assessments/{verdict['id']}/photos"
    before = log_size(client)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=120) as http:
            first = verdict["photos"][0]["sha256"]
            return await asyncio.gather(
                *(http.delete(url, headers=bearer(actors.platform)) for _ in range(6)),
                *(http.delete(url, params={"sha256": first}, headers=bearer(actors.platform)) for _ in range(6)),
            )

    answers = asyncio.run(burst())
    assert [r.status_code for r in answers] == [200] * 12, [r.text[:200] for r in answers]
    types = [e.type for e in ctx_of(client).ledger.entries(before, log_size(client))]
    assert types in (["photos.erased"], ["photos.erased"] * 2)  # all at once, or the one photo then the rest
    erased = [sha for r in {a.json()["index"]: a.json() for a in answers}.values() for sha in r["photo_sha256"]]
    assert sorted(erased) == sorted(p["sha256"] for p in verdict["photos"])
    assert not any(blob_file(api_settings, p["sha256"]).exists() for p in verdict["photos"])
    assert verify_ledger(ctx_of(client).ledger, workers=1).ok


def test_only_the_owner_or_an_admin_may_erase(client: TestClient, actors: Actors, api_settings: Settings) -> None:
    item = new_item(client, actors.platform)
    verdict = assess(client, actors.platform, item, real_photos(1, offset=26))
    aid, sha = verdict["id"], verdict["photos"][0]["sha256"]
    before = log_size(client)
    assert erase(client, actors.platform2, aid).status_code == 403
    assert erase(client, actors.lab, aid).status_code == 403
    assert client.delete(f"/v1/assessments/{aid}/photos").status_code == 401
    assert log_size(client) == before and blob_file(api_settings, sha).is_file()

    r = erase(client, actors.admin, aid, reason="court order")
    assert r.status_code == 200, r.text
    events = client.get(f"/v1/items/{item}/trace").json()["events"]
    owner = parse_entry(b64d(events[0]["entry"])).body["platform"]
    assert r.json()["by"] and r.json()["by"] != owner  # the admin's own principal id
    assert not blob_file(api_settings, sha).exists()


def reused_items(photo: dict[str, Any]) -> set[str]:
    return {m["item_id"] for m in photo.get("reused_from") or []}


def test_shared_bytes_stay_while_another_assessment_holds_them(
    client: TestClient, actors: Actors, api_settings: Settings
) -> None:
    photos = real_photos(1, offset=28)
    item_a, item_b = new_item(client, actors.platform2), new_item(client, actors.platform)
    a = assess(client, actors.platform2, item_a, photos)
    b = assess(client, actors.platform, item_b, photos)
    sha = a["photos"][0]["sha256"]
    assert b["photos"][0]["sha256"] == sha and reused_items(b["photos"][0]) == {item_a}  # the other platform's

    assert erase(client, actors.platform2, a["id"]).status_code == 200
    assert blob_file(api_settings, sha).is_file()  # item B's assessment still holds the bytes
    assert client.get(f"/v1/assessments/{a['id']}/photos/{sha}", headers=bearer(actors.platform2)).status_code == 404
    assert client.get(f"/v1/assessments/{b['id']}/photos/{sha}", headers=bearer(actors.platform)).status_code == 200
    assert reuse_rows(client, item_a) == set() and reuse_rows(client, item_b) == {sha}

    # The same photo again, for another item: no longer found as item A's (the index forgot it).
    item_c = new_item(client, actors.platform)
    c = assess(client, actors.platform, item_c, photos)
    assert item_a not in reused_items(c["photos"][0])

    assert erase(client, actors.platform, b["id"]).status_code == 200
    assert blob_file(api_settings, sha).is_file()  # C holds them now
    assert erase(client, actors.platform, c["id"]).status_code == 200
    assert not blob_file(api_settings, sha).exists()


def test_lab_outcome_export_skips_erased_photos(client: TestClient, actors: Actors, tmp_path: Path) -> None:
    from training.export_dataset import export_dataset

    item = new_item(client, actors.platform)
    verdict = assess(client, actors.platform, item, real_photos(2, offset=30))
    aid, (kept, gone) = verdict["id"], [p["sha256"] for p in verdict["photos"]]
    env = certificate_envelope(actors.lab_key, item, actors.lab_id)
    assert client.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab)).status_code == 201
    ctx = ctx_of(client)
    out = tmp_path / "dataset"

    def exported() -> set[str]:
        with (out / "manifest.csv").open() as f:
            return {row["sha256"] for row in csv.DictReader(f) if row["item_group"] == item}

    export_dataset(ctx.ledger, ctx.blobs, out)
    assert exported() == {kept, gone}
    assert erase(client, actors.platform, aid, sha256=gone).status_code == 200
    counts = export_dataset(ctx.ledger, ctx.blobs, out)
    assert exported() == {kept}
    assert counts["erased_photos"] >= 1
    assert not list(out.glob(f"*/{gone}.*")), "the copy from the earlier export is deleted too"
    assert list(out.glob(f"*/{kept}.*"))


def test_retention_purge_erases_only_old_photos(client: TestClient, actors: Actors, api_settings: Settings) -> None:
    ctx = ctx_of(client)
    old_item, new_item_id = new_item(client, actors.platform), new_item(client, actors.platform)
    old = assess(client, actors.platform, old_item, real_photos(1, offset=33))
    new = assess(client, actors.platform, new_item_id, real_photos(1, offset=34))
    old_sha, new_sha = old["photos"][0]["sha256"], new["photos"][0]["sha256"]
    env = {"AUTHENTICATOR_DATA_DIR": str(api_settings.data_dir)}
    if api_settings.database_url:
        env["AUTHENTICATOR_DATABASE_URL"] = api_settings.database_url
    runner = CliRunner()

    def purge(*args: str) -> Any:
        res = runner.invoke(cli_app, ["photos", "purge", *args], env=env)
        return res

    # A dry run names both and erases nothing.
    before = log_size(client)
    res = purge("--older-than-days", "0", "--dry-run")
    assert res.exit_code == 0, res.output
    assert "would erase" in res.output and old["id"] in res.output and new["id"] in res.output
    assert log_size(client) == before and blob_file(api_settings, old_sha).is_file()

    # A tiny fake clock: "now" is one day after the new assessment (less a microsecond), so with a
    # one-day retention only what was recorded before it is old.
    recorded = datetime.strptime(new["recorded_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    summary = purge_older_than(ctx, timedelta(days=1), now=recorded + timedelta(days=1, microseconds=-1))
    assert old["id"] in summary.assessment_ids and new["id"] not in summary.assessment_ids
    assert summary.entries == summary.assessments >= 1
    assert not blob_file(api_settings, old_sha).exists() and blob_file(api_settings, new_sha).is_file()
    erased = client.get(f"/v1/assessments/{old['id']}").json()["photos"][0]
    assert erased["erased"] is True
    trace = client.get(f"/v1/items/{old_item}/trace").json()
    last = parse_entry(b64d(trace["events"][-1]["entry"]))
    assert last.type == "photos.erased" and last.body["by"] == "operator" and last.body["reason"] == "retention"

    # From the command line: a day's retention keeps the new photo; no period at all is an error.
    res = purge("--older-than-days", "1")
    assert res.exit_code == 0, res.output
    assert blob_file(api_settings, new_sha).is_file()
    res = purge()
    assert res.exit_code == 2 and "retention" in res.output
    res = runner.invoke(cli_app, ["photos", "purge"], env={**env, "AUTHENTICATOR_PHOTO_RETENTION_DAYS": "0"})
    assert res.exit_code == 0, res.output
    assert "erased" in res.output and new["id"] in res.output
    assert not blob_file(api_settings, new_sha).exists()
    assert (
        client.get(f"/v1/assessments/{new['id']}/photos/{new_sha}", headers=bearer(actors.platform)).status_code == 404
    )

    # Again: nothing left, nothing appended.
    size = log_size(client)
    res = purge("--older-than-days", "0")
    assert res.exit_code == 0 and res.output.startswith("erased 0 photos of 0 assessments"), res.output
    assert log_size(client) == size
    assert verify_ledger(ctx.ledger, workers=1).ok
