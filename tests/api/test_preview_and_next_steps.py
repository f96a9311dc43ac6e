"""What sellers and buyers see (issue 15), below the browser: preview before record, the refusal
of unusable submissions, the item's standing, lab lists, plain messages, the CLI's errors and the
deployment behind a proxy. The pages themselves are driven in Chromium by
``tests/web/test_web_standing.py``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from api.app import create_app
from api.cli import proxy_options
from authenticator.config import Settings
from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.services.standing import item_standing
from authenticator.vision.decode import decode_image
from authenticator.vision.quality import QualityThresholds, gate, measure_quality
from tests.api_helpers import bearer, certificate_envelope, make_actors, new_item, photo_files
from tests.live_server import CLI, free_port
from tests.web.browser_site import Site, real_photos, site, write_model_that_knows  # noqa: F401  (site: fixture)

BIRKIN = "alauzon13-birkin/authentic"
AJ1 = "zhengwu123-aj1/authentic"
#: A well-formed log verifier key (an unusable --key is its own usage error, tests/api/test_input_refusals.py).
LOG_KEY = CheckpointSigner("example.com/log", Ed25519PrivateKey.from_private_bytes(bytes(32))).verifier_key


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def blurred(path: Path, radius: float = 8) -> bytes:
    """A real photo, badly out of focus."""
    return _jpeg(Image.open(path).filter(ImageFilter.GaussianBlur(radius)))


def blurred_close_up(path: Path) -> bytes:
    """The middle of a real photo filling the frame (a close-up), out of focus."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    return _jpeg(img.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4)).resize((w, h)).filter(ImageFilter.GaussianBlur(6)))


# --- the item's standing (pure) -------------------------------------------------------------------


def _cert(index: int, cid: str, outcome: str = "authentic", lab: str = "lab_a") -> tuple[int, dict[str, Any]]:
    body = {"certificate_id": cid, "lab_id": lab, "outcome": outcome, "inspection_date": "2026-11-20"}
    return index, {"type": "certificate.attached", "time": "2026-11-20T10:00:00.000000Z", "body": body}


def _revoke(index: int, cid: str) -> tuple[int, dict[str, Any]]:
    body = {"certificate_id": cid, "lab_id": "lab_a", "reason": "typo in the report"}
    return index, {"type": "certificate.revoked", "time": "2026-11-21T10:00:00.000000Z", "body": body}


def _verdict(index: int, decision: str) -> tuple[int, dict[str, Any]]:
    body = {"assessment_id": f"asm_{index}", "decision": decision, "probability_authentic": 0.5}
    return index, {"type": "assessment.recorded", "time": "2026-11-19T10:00:00.000000Z", "body": body}


def _kinds(entries: list[tuple[int, dict[str, Any]]]) -> tuple[str, list[str], list[str]]:
    s = item_standing(entries)
    return s.level, [f.kind for f in s.facts], [f.kind for f in s.history]


def test_standing_most_serious_current_fact_first() -> None:
    assert _kinds([]) == ("inconclusive", ["nothing"], [])
    assert _kinds([_verdict(1, "authentic")]) == ("ai_verified", ["photo_authentic"], [])
    assert _kinds([_verdict(1, "inconclusive")]) == ("inconclusive", ["photo_inconclusive"], [])
    assert _kinds([_verdict(1, "counterfeit")]) == ("warning", ["photo_counterfeit"], [])
    # A lab's certificate outranks the photo check, which becomes history.
    assert _kinds([_verdict(1, "counterfeit"), _cert(2, "c1")]) == (
        "lab_certified",
        ["lab_certified"],
        ["photo_outranked"],
    )
    assert _kinds([_verdict(1, "authentic"), _cert(2, "c1")]) == ("lab_certified", ["lab_certified"], [])  # agrees
    # Revoked and not replaced: the warning comes first, the photo verdict after it.
    assert _kinds([_verdict(1, "authentic"), _cert(2, "c1"), _revoke(3, "c1")]) == (
        "warning",
        ["revoked", "photo_authentic"],
        [],
    )
    # Revoked, then a corrected certificate: certified, and the revocation is history.
    assert _kinds([_cert(2, "c1"), _revoke(3, "c1"), _cert(4, "c2")]) == (
        "lab_certified",
        ["lab_certified"],
        ["revocation_replaced"],
    )
    # A certificate from before the revocation does not replace it.
    assert _kinds([_cert(2, "c1"), _cert(3, "c2", lab="lab_b"), _revoke(4, "c1")])[1] == ["revoked", "lab_certified"]
    # A lab's counterfeit finding comes before everything else.
    level, facts, _ = _kinds([_cert(2, "c1"), _cert(3, "c2", "counterfeit", "lab_b")])
    assert (level, facts) == ("warning", ["lab_counterfeit", "lab_certified"])
    # Other photos that look authentic do not hide a counterfeit verdict: both are said, the warning first.
    assert _kinds([_verdict(1, "counterfeit"), _verdict(2, "authentic")]) == (
        "warning",
        ["photo_counterfeit", "photo_authentic"],
        [],
    )


# --- preview before record, refusal of unusable photos ---------------------------------------------


@pytest.fixture(scope="module")
def knowing_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("knowing-weights")
    write_model_that_knows(
        folder, [(p, "bag") for p in real_photos(BIRKIN, 2)] + [(p, "sneaker") for p in real_photos(AJ1, 2)]
    )
    return folder


@pytest.fixture(scope="module")
def api(knowing_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any, Path]]:
    data = tmp_path_factory.mktemp("preview-api")
    settings = Settings(data_dir=data, weights_dir=knowing_weights, database_url=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, make_actors(client), data


def _log_size(client: TestClient) -> int:
    return int(client.app.state.ctx.ledger.size())  # type: ignore[attr-defined]


def _blobs(data: Path) -> set[str]:
    return {p.name for p in (data / "blobs").rglob("*") if p.is_file()}


def test_preview_and_dry_run_record_and_store_nothing(api: tuple[TestClient, Any, Path]) -> None:
    client, actors, data = api
    item = new_item(client, actors.platform)
    size, blobs = _log_size(client), _blobs(data)
    good = real_photos(BIRKIN, 2)
    files = [*photo_files(good), ("photos", ("blurred.jpg", blurred(good[0]), "image/jpeg"))]
    for url in ("/v1/assessments/preview", f"/v1/items/{item}/assessments?dry_run=true"):
        r = client.post(url, files=files, headers=bearer(actors.platform))
        assert r.status_code == 200, r.text
        preview = r.json()
        assert preview["recorded"] is False and preview["recordable"] is True and preview["refusal"] is None
        assert preview["decision"] in ("authentic", "counterfeit", "inconclusive")
        usable, aside = preview["photos"][:2], preview["photos"][2]
        assert all(p["usable"] and not p["set_aside"] and p["probability_authentic"] is not None for p in usable)
        assert aside["set_aside"] and not aside["usable"] and aside["probability_authentic"] is None  # no score
        assert [x["code"] for x in aside["reasons"]] == ["blurred"]
        assert aside["retake"] and "sharp" in aside["retake"]
    assert _log_size(client) == size and _blobs(data) == blobs  # nothing appended, nothing stored
    assert client.get(f"/v1/items/{item}/trace").json()["events"][-1]["index"] < size
    # Someone else's item: no preview of it (403), and the preview needs a platform key.
    other = new_item(client, actors.platform2)
    assert (
        client.post(
            f"/v1/items/{other}/assessments?dry_run=true", files=files, headers=bearer(actors.platform)
        ).status_code
        == 403
    )
    assert client.post("/v1/assessments/preview", files=files).status_code == 401


def test_all_unusable_submission_is_refused_with_reasons_and_appends_nothing(
    api: tuple[TestClient, Any, Path],
) -> None:
    client, actors, data = api
    item = new_item(client, actors.platform)
    size, blobs = _log_size(client), _blobs(data)
    photos = real_photos(BIRKIN, 2)
    files = [
        ("photos", ("front-blurred.jpg", blurred(photos[0]), "image/jpeg")),
        ("photos", ("tiny.jpg", _jpeg(Image.open(photos[1]).resize((120, 90))), "image/jpeg")),
    ]
    r = client.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(actors.platform))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "no_usable_photo"
    assert problem["detail"].startswith("Nothing was recorded: none of the 2 photos can be used.")
    assert "front-blurred.jpg: The photo is blurred" in problem["detail"]
    assert "tiny.jpg: The photo is too small" in problem["detail"]
    assert _log_size(client) == size and _blobs(data) == blobs
    preview = client.post("/v1/assessments/preview", files=files, headers=bearer(actors.platform)).json()
    assert preview["recordable"] is False and preview["refusal"] == problem["detail"]
    # One usable photo is enough: the verdict is recorded and says which photo was set aside.
    files[1] = photo_files(photos[1:])[0]
    r = client.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(actors.platform))
    assert r.status_code == 201, r.text
    assert _log_size(client) == size + 1
    for answer in (r.json(), client.get(f"/v1/assessments/{r.json()['id']}").json()):
        aside, used = answer["photos"]
        assert aside["set_aside"] and aside["probability_authentic"] is None  # set aside: no score at all
        assert not used["set_aside"] and used["probability_authentic"] is not None
    html = client.get(f"/t/{item}").text
    assert "from 2 photos, 1 set aside (blurred)" in html


def test_a_platform_sending_its_own_photos_again_is_not_flagged(api: tuple[TestClient, Any, Path]) -> None:
    client, actors, _ = api
    photos = real_photos(AJ1, 2)
    first = new_item(client, actors.platform, "sneaker")
    r = client.post(f"/v1/items/{first}/assessments", files=photo_files(photos), headers=bearer(actors.platform))
    assert r.status_code == 201, r.text
    # The same platform registers the item again (a retry in a new tab) and sends the same photos.
    again = new_item(client, actors.platform, "sneaker")
    r = client.post(f"/v1/items/{again}/assessments", files=photo_files(photos), headers=bearer(actors.platform))
    assert r.status_code == 201, r.text
    assert "photo_reused" not in [x["code"] for x in r.json()["reasons"]]
    assert all(not p["reused_from"] for p in r.json()["photos"])
    # Another platform sending them is what the check is for.
    theirs = new_item(client, actors.platform2, "sneaker")
    r = client.post(f"/v1/items/{theirs}/assessments", files=photo_files(photos), headers=bearer(actors.platform2))
    assert r.status_code == 201, r.text
    assert "photo_reused" in [x["code"] for x in r.json()["reasons"]]
    assert {m["item_id"] for p in r.json()["photos"] for m in p["reused_from"]} <= {first, again}


def test_labs_are_listed_publicly_with_their_accreditation(api: tuple[TestClient, Any, Path]) -> None:
    client, _, _ = api
    r = client.get("/v1/labs")
    assert r.status_code == 200
    listed = r.json()["labs"]
    assert [(lab["name"], lab["accreditation"]) for lab in listed][:2] == [
        ("Geneva Lab", "ISO/IEC 17025"),
        ("Milan Lab", "ISO/IEC 17025"),
    ]
    assert all(set(lab) >= {"id", "public_key", "keyid", "created_at"} and "api_key" not in lab for lab in listed)


def test_recertified_item_has_the_certified_badge_and_the_revocation_as_history(
    api: tuple[TestClient, Any, Path],
) -> None:
    client, a, _ = api
    item = new_item(client, a.platform)
    r = client.post(
        f"/v1/items/{item}/certificates", json=certificate_envelope(a.lab_key, item, a.lab_id), headers=bearer(a.lab)
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/v1/certificates/{r.json()['id']}/revocation", json={"reason": "typo in the report"}, headers=bearer(a.lab)
    )
    assert r.status_code == 201, r.text
    assert client.get(f"/v1/items/{item}").json()["badge"]["level"] == "warning"
    envelope = certificate_envelope(a.lab_key, item, a.lab_id, inspection_date="2026-11-21")
    r = client.post(f"/v1/items/{item}/certificates", json=envelope, headers=bearer(a.lab))
    assert r.status_code == 201, r.text
    assert client.get(f"/v1/items/{item}").json()["badge"]["level"] == "lab_certified"
    html = client.get(f"/t/{item}").text
    assert 'data-kind="lab_certified"' in html and 'data-kind="revoked"' not in html
    assert 'data-kind="revocation_replaced"' in html and "typo in the report" in html


# --- messages --------------------------------------------------------------------------------------


def test_sizes_are_in_megabytes_with_the_limit(knowing_weights: Path, tmp_path: Path) -> None:
    noise = Image.frombytes("RGB", (1200, 1200), os.urandom(1200 * 1200 * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    big = buf.getvalue()  # about 4.1 MB of incompressible pixels
    settings = Settings(
        data_dir=tmp_path / "d",
        weights_dir=knowing_weights,
        database_url=None,
        vision_max_photo_bytes=2 * 1024 * 1024,
        api_max_body_bytes=8 * 1024 * 1024,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        a = make_actors(client)
        item = new_item(client, a.platform)
        r = client.post(
            f"/v1/items/{item}/assessments",
            files=[("photos", ("big.png", big, "image/png"))],
            headers=bearer(a.platform),
        )
        assert r.status_code == 413, r.text
        mb = f"{len(big) / 2**20:.1f}"
        assert r.json()["detail"].startswith(f"The file is {mb} MB; a photo can be at most 2 MB"), r.json()
        files = [("photos", (f"big{i}.png", big, "image/png")) for i in range(3)]
        r = client.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(a.platform))
        assert r.status_code == 413
        assert r.json()["detail"].startswith("the upload is larger than 8 MB, the most one request may send")
        page = client.get("/assess").text
        assert "at most 2 MB each and 8 MB together" in page


def test_a_blurred_close_up_is_told_to_focus_not_to_move_closer() -> None:
    for path in [*real_photos(BIRKIN, 2), *real_photos(AJ1, 2)]:
        img = decode_image(blurred_close_up(path))
        metrics = measure_quality(img.rgb, img.alpha)
        assert metrics.object_fraction < QualityThresholds().min_object_fraction  # its edges are gone
        assert [r.code for r in gate(metrics, QualityThresholds())] == ["blurred"], path.name


# --- the command line ------------------------------------------------------------------------------


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTHENTICATOR_")}
    return subprocess.run([CLI, *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_lab_sign_with_the_public_key_says_so_without_a_traceback(tmp_path: Path) -> None:
    out = _cli(["lab", "keygen", "--out", "lab.key"], tmp_path)
    assert out.returncode == 0, out.stderr
    args = [
        "lab",
        "sign",
        "itm_1",
        "--outcome",
        "authentic",
        "--method",
        "UV",
        "--lab-id",
        "lab_1",
        "--date",
        "2026-11-20",
    ]
    res = _cli([*args, "--key", "lab.pub"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "lab.pub holds a public key" in " ".join(res.stderr.split())
    res = _cli([*args, "--key", "lab.key", "--photos", "missing.jpg"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "cannot read missing.jpg" in res.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["trace", "verify", "missing.json", "--key", LOG_KEY],
        ["trace", "verify", "README.txt", "--key", LOG_KEY],
        ["trace", "verify", "README.txt", "--key", LOG_KEY, "--checkpoint", "missing.note"],
        ["trace", "verify", "http://127.0.0.1:9/t/itm_1", "--key", LOG_KEY],
        [
            "lab",
            "sign",
            "itm_1",
            "--outcome",
            "authentic",
            "--method",
            "UV",
            "--lab-id",
            "lab_1",
            "--key",
            "missing.key",
        ],
        [
            "lab",
            "sign",
            "itm_1",
            "--outcome",
            "authentic",
            "--method",
            "UV",
            "--lab-id",
            "lab_1",
            "--key",
            "README.txt",
        ],
        ["lab", "keygen", "--out", "no-such-folder/lab.key"],
        ["lab", "revoke", "crt_1", "--reason", "typo", "--url", "http://127.0.0.1:9", "--api-key", "k"],
        ["assess", "missing.jpg"],
        ["keys", "create", "--role", "lab"],
        ["keys", "list", "--db", "sqlite:///README.txt/x.db"],
    ],
    ids=lambda a: "-".join(a[:2]) + "-" + a[-1].replace("/", "_")[-20:],
)
def test_cli_errors_are_one_line_never_a_traceback(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "README.txt").write_text("not a trace, not a key\n")
    res = _cli(args, tmp_path, AUTHENTICATOR_DATA_DIR=str(tmp_path / "data"))
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    assert "error" in res.stderr.lower()


def test_keys_create_refuses_to_start_a_database_where_nobody_said(tmp_path: Path) -> None:
    res = _cli(["keys", "create", "--role", "admin", "--name", "ops"], tmp_path)
    assert res.returncode == 2
    words = " ".join(res.stderr.split())
    assert f"there is no database at {tmp_path / 'data' / 'authenticator.db'}" in words
    assert "AUTHENTICATOR_DATA_DIR" in words and "--db" in words
    assert not (tmp_path / "data").exists()
    # Named explicitly, it is created, and the command says where.
    res = _cli(["keys", "create", "--role", "admin", "--name", "ops"], tmp_path, AUTHENTICATOR_DATA_DIR="data")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["role"] == "admin"
    assert "creating a new, empty one" in res.stderr and f"database: sqlite:///{tmp_path / 'data'}" in res.stderr
    # Now it exists: found without naming it again.
    res = _cli(["keys", "list"], tmp_path)
    assert res.returncode == 0 and f"database: sqlite:///{tmp_path / 'data'}" in res.stderr


def test_keys_create_help_offers_only_the_roles_it_accepts(tmp_path: Path) -> None:
    res = _cli(["keys", "create", "--help"], tmp_path)
    text = " ".join(res.stdout.split())
    assert "admin (operators) or platform" in text and "admin, platform or lab" not in text
    res = _cli(["keys", "create", "--role", "lab"], tmp_path)
    assert res.returncode == 2 and "POST /v1/labs" in res.stderr


def test_trace_verify_takes_the_page_address_and_lab_revoke_works(site: Site, tmp_path: Path) -> None:  # noqa: F811
    # The address a QR code holds (/t/ITEM) and a listing's page (/l/LISTING) verify like the API address.
    for address in (f"{site.base}/t/{site.item_id}", f"{site.base}/l/{site.listing_id}"):
        res = _cli(["trace", "verify", address, "--key", site.verifier_key, "--json"], tmp_path)
        report = json.loads(res.stdout)
        assert report["item_id"] == site.item_id and len(report["events"]) == site.events, res.stderr
        api = _cli(
            ["trace", "verify", f"{site.base}/v1/items/{site.item_id}/trace", "--key", site.verifier_key, "--json"],
            tmp_path,
        )
        assert res.returncode == api.returncode and json.loads(api.stdout)["ok"] == report["ok"]
    # A lab revokes its certificate from the command line.
    trace = httpx.get(f"{site.base}/v1/items/{site.item_id}/trace").json()
    entries = [json.loads(base64.b64decode(e["entry"])) for e in trace["events"]]
    certificate = next(e["body"]["certificate_id"] for e in entries if e["type"] == "certificate.attached")
    res = _cli(
        ["lab", "revoke", certificate, "--reason", "stitching re-examined", "--url", site.base],
        tmp_path,
        AUTHENTICATOR_API_KEY=site.lab,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["status"] == "revoked"
    assert httpx.get(f"{site.base}/v1/items/{site.item_id}").json()["badge"]["level"] == "warning"
    again = _cli(
        ["lab", "revoke", certificate, "--reason", "again", "--url", site.base],
        tmp_path,
        AUTHENTICATOR_API_KEY=site.lab,
    )
    assert again.returncode == 1 and "Traceback" not in again.stderr  # the API's 409, printed


# --- behind a TLS-terminating proxy ------------------------------------------------------------------


def test_trusted_proxies_setting() -> None:
    assert Settings(trusted_proxies=None).trusted_proxy_list == []
    assert Settings(trusted_proxies=" 127.0.0.1, 10.0.0.0/8 ,::1").trusted_proxy_list == [
        "127.0.0.1",
        "10.0.0.0/8",
        "::1",
    ]
    for bad in ("*", "proxy.example.com", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="not an IP address or network"):
            Settings(trusted_proxies=bad)
    assert proxy_options(Settings()) == {"proxy_headers": False}
    assert proxy_options(Settings(trusted_proxies="127.0.0.1")) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["127.0.0.1"],
    }


class SeenScopes:
    """ASGI wrapper that records the scheme and client each request arrived with (after uvicorn's proxy handling)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["scheme"], scope["client"][0] if scope.get("client") else ""))
        await self.app(scope, receive, send)


@pytest.mark.parametrize(("trusted", "believed"), [(None, False), ("127.0.0.1", True), ("10.0.0.0/8", False)])
def test_forwarded_headers_are_believed_only_from_trusted_proxies(
    knowing_weights: Path, tmp_path: Path, trusted: str | None, believed: bool
) -> None:
    settings = Settings(
        data_dir=tmp_path / "d", weights_dir=knowing_weights, database_url=None, trusted_proxies=trusted
    )
    wrapper = SeenScopes(create_app(settings))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(wrapper, host="127.0.0.1", port=port, log_level="warning", **proxy_options(settings))
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        r = httpx.get(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        )
        assert r.status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert wrapper.seen[-1] == (("https", "203.0.113.9") if believed else ("http", "127.0.0.1"))


# --- the shipped model: a photo of something else is not usable --------------------------------------


def test_photos_of_something_else_are_refused_with_the_shipped_model(tmp_path: Path) -> None:
    """The shipped model has a reference bank, so it can tell a cat from a bag: a submission of
    nothing but other things is refused (nothing recorded); one real photo among them is enough."""
    settings = Settings(data_dir=tmp_path / "d", database_url=None)
    if not (settings.weights_dir / f"{settings.model_name}.card.json").exists():
        pytest.skip("no shipped model in weights/")
    import skimage

    samples = Path(skimage.__file__).parent / "data"
    cat, rocket = (samples / "chelsea.png").read_bytes(), (samples / "rocket.jpg").read_bytes()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        a = make_actors(client)
        item = new_item(client, a.platform, "sneaker")
        size = _log_size(client)
        others = [("photos", ("cat.png", cat, "image/png")), ("photos", ("rocket.jpg", rocket, "image/jpeg"))]
        r = client.post(f"/v1/items/{item}/assessments", files=others, headers=bearer(a.platform))
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "no_usable_photo"
        assert "cat.png: This does not look like a bag, watch or sneaker" in r.json()["detail"]
        assert "rocket.jpg: This does not look like a bag, watch or sneaker" in r.json()["detail"]
        assert _log_size(client) == size
        preview = client.post("/v1/assessments/preview", files=others, headers=bearer(a.platform)).json()
        assert preview["recordable"] is False
        assert all(p["set_aside"] and p["probability_authentic"] is None for p in preview["photos"])  # no "99%"
        assert all("the bag, watch or sneaker itself" in p["retake"] for p in preview["photos"])
        files = [*photo_files(real_photos(AJ1, 1)), others[0]]
        r = client.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(a.platform))
        assert r.status_code == 201, r.text
        assert r.json()["photos"][1]["set_aside"] and r.json()["photos"][1]["probability_authentic"] is None
        assert _log_size(client) == size + 1
