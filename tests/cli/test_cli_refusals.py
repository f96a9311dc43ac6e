"""The command line refuses what it cannot do well: one ``error:`` line on stderr, exit 2 (1 only
where a command documents it), never a traceback, and nothing written or created on the way."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from authenticator.cli import app
from authenticator.config import Settings
from authenticator.ledger.log import Ledger
from tests.ledger_samples import sample_entries


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working folder and no AUTHENTICATOR_* settings, as a person's shell might be."""
    for name in [k for k in os.environ if k.startswith("AUTHENTICATOR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def _run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env or None)


def _refused(res: Result, code: int = 2) -> str:
    """The one error line of a refusal (and no traceback, no "unexpected")."""
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output and "unexpected" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return " ".join(lines[0].split())


def _usage_error(res: Result, option: str) -> None:
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "unexpected" not in res.output and f"Invalid value for '{option}'" in " ".join(res.output.split())


def _server(tmp: Path) -> Path:
    """A server's data folder with a log of a few entries (items item-0..item-2)."""
    with Ledger.from_settings(Settings(data_dir=tmp / "srv")) as ledger:
        ledger.append_batch(sample_entries(6, items=3))
    return tmp / "srv"


# --- 1. lab keygen never destroys a key --------------------------------------------------------------


def test_keygen_refuses_a_private_key_named_like_the_public_one(here: Path) -> None:
    said = _refused(_run("lab", "keygen", "--out", "lab.pub"))
    assert "lab.pub ends in .pub" in said
    assert list(here.iterdir()) == []


def test_keygen_never_overwrites_another_keys_public_half(here: Path) -> None:
    (here / "lab.pub").write_text("the public key of another lab\n")
    said = _refused(_run("lab", "keygen", "--out", "lab.key"))
    assert "lab.pub exists" in said
    assert (here / "lab.pub").read_text() == "the public key of another lab\n"
    assert not (here / "lab.key").exists()
    res = _run("lab", "keygen", "--out", "other.key")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert (here / "other.pub").read_text().strip() == info["public_key"]
    assert b"PRIVATE KEY" in (here / "other.key").read_bytes()


# --- 2. read and maintenance commands never start a database ------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["ledger", "key"],
        ["ledger", "verify"],
        ["ledger", "checkpoint"],
        ["ledger", "history", "itm_1"],
        ["ledger", "prove", "--index", "0"],
        ["ledger", "consistency", "--from", "0", "--to", "0"],
        ["photos", "purge", "--older-than-days", "30"],
        ["projections", "status"],
        ["projections", "rebuild"],
        ["model", "list"],
        ["model", "rollback"],
        ["model", "dataset"],
    ],
    ids=lambda a: "-".join(a[:2]),
)
def test_a_missing_database_is_an_error_not_a_new_one(here: Path, args: list[str]) -> None:
    said = _refused(_run(*args))
    assert f"there is no database at {here / 'data' / 'authenticator.db'}" in said
    assert "--db" in said and "AUTHENTICATOR_DATA_DIR" in said
    assert not (here / "data").exists()  # neither a database nor a log key


def test_a_named_database_that_is_not_there_is_refused_too(here: Path) -> None:
    missing = here / "no" / "dir" / "x.db"
    said = _refused(_run("ledger", "verify", "--db", f"sqlite:///{missing}"))
    assert f"there is no database at {missing}" in said
    assert not (here / "no").exists()
    said = _refused(_run("projections", "status", "--db", f"sqlite:///{missing}"))
    assert not (here / "no").exists()


def test_the_servers_database_is_found_when_named(here: Path) -> None:
    data = _server(here)
    res = _run("ledger", "key", AUTHENTICATOR_DATA_DIR=str(data))
    assert res.exit_code == 0, res.output
    assert "+" in res.stdout
    res = _run("projections", "status", AUTHENTICATOR_DATA_DIR=str(data))
    assert res.exit_code == 0, res.output


# --- 3. the model lifecycle checks its inputs up front --------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["model", "evaluate", "/nonexist"], "/nonexist: no such file or folder"),
        (["model", "evaluate", "empty"], "empty holds 0 model cards"),
        (["model", "evaluate", "some.txt"], "some.txt is not a model card"),
        (["model", "train", "--dataset", "/nonexist"], "--dataset /nonexist: no such folder"),
        (["model", "train", "--dataset", "empty"], "--dataset empty holds no manifest.csv"),
        (["model", "train", "--recipe", "other"], "--recipe 'other': choose head or full"),
        (["model", "dataset", "--manifest", "/nonexist/manifest.csv"], "--manifest /nonexist/manifest.csv: no such"),
        (["model", "promote", "some.txt"], "some.txt is not a model card"),
        (["model", "shadow", "/nonexist"], "/nonexist: no such file or folder"),
    ],
    ids=lambda a: "-".join(a[:3]) if isinstance(a, list) else "",
)
def test_model_commands_refuse_a_wrong_input_in_one_line(here: Path, args: list[str], words: str) -> None:
    (here / "empty").mkdir()
    (here / "some.txt").write_text("not a card\n")
    assert words in _refused(_run(*args))


def _training(*args: str) -> Result:
    from training.lifecycle_cli import model_app

    return CliRunner().invoke(model_app, list(args))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["evaluate", "--candidate", "/nonexist"], "--candidate /nonexist: no such file or folder"),
        (["evaluate", "--candidate", "empty"], "--candidate empty holds 0 model cards"),  # was StopIteration
        (["evaluate", "--candidate", "card.json"], "--champion champion.json: no model card there"),
        (["train", "--dataset", "/nonexist"], "--dataset /nonexist/manifest.csv: no such file"),
        (["dataset", "--manifest", "/nonexist/manifest.csv"], "--manifest /nonexist/manifest.csv: no such file"),
        (["dataset", "--manifest", "some.txt"], "some.txt is not a manifest CSV: no label or path column"),
        (["dataset", "--manifest", "header.csv"], "header.csv lists no photos"),
        (["dataset", "--manifest", "one.csv"], "error"),  # too few items to fold: scikit-learn's ValueError
    ],
    ids=lambda a: "-".join(a[:3]) if isinstance(a, list) else "",
)
def test_the_training_side_says_a_wrong_input_in_one_line(here: Path, args: list[str], words: str) -> None:
    (here / "empty").mkdir()
    (here / "some.txt").write_text("not a manifest\nat all\n")
    (here / "header.csv").write_text("path,label\n")
    (here / "one.csv").write_text("path,label\na/authentic/1.jpg,authentic\n")
    (here / "card.json").write_text("{}")
    rest = {
        "evaluate": ["--champion", "champion.json", "--dataset", "empty", "--out", "out"],
        "train": ["--champion", "champion.json", "--out", "out"],
        "dataset": ["--out", "out", "--certified", "header.csv"],
    }[args[0]]
    said = _refused(_training(*args, *rest))
    assert words in said


# --- 4. ranges ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["ledger", "verify", "--workers", "-1"], "--workers"),
        (["ledger", "verify", "--workers", "0"], "--workers"),
        (["photos", "purge", "--older-than-days", "99999999"], "--older-than-days"),
        (["photos", "purge", "--older-than-days", "-1"], "--older-than-days"),
        (["serve", "--port", "99999"], "--port"),
        (["serve", "--port", "0"], "--port"),
        (["witness", "serve", "--name", "w.test/x", "--log", "x", "--port", "70000"], "--port"),
    ],
    ids=lambda a: "_".join(a) if isinstance(a, list) else "",
)
def test_numbers_out_of_range_are_usage_errors(here: Path, args: list[str], option: str) -> None:
    _usage_error(_run(*args), option)
    assert not (here / "data").exists()


def test_a_retention_setting_out_of_range_is_refused(here: Path) -> None:
    data = _server(here)
    said = _refused(
        _run("photos", "purge", AUTHENTICATOR_DATA_DIR=str(data), AUTHENTICATOR_PHOTO_RETENTION_DAYS="99999999")
    )
    assert "AUTHENTICATOR_PHOTO_RETENTION_DAYS" in said and "at most" in said


# --- 5. assess takes the product lines the API takes ----------------------------------------------------


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (["furniture", "X", "Y"], "--category: Input should be 'bag', 'watch' or 'sneaker'"),
        (["", "", ""], "--brand: String should have at least 1 character"),
        (["bag", "Hermès", "Birkin\u202e30"], "--model"),
    ],
)
def test_assess_refuses_a_product_line_the_api_refuses(here: Path, line: list[str], words: str) -> None:
    (here / "photo.jpg").write_bytes(b"not decoded: the line is refused first")
    category, brand, model = line
    said = _refused(_run("assess", "--category", category, "--brand", brand, "--model", model, "photo.jpg"))
    assert words in said


# --- 6. the rest ----------------------------------------------------------------------------------------


def test_a_file_where_a_folder_goes_is_named_so(here: Path) -> None:
    (here / "FILE").write_text("")
    (here / "photo.jpg").write_bytes(b"x")
    assert (
        _refused(_run("witness", "key", "--name", "w.test/x", "--data-dir", "FILE"))
        == "error: --data-dir FILE: not a folder"
    )
    assert _refused(_run("assess", "--heatmaps", "FILE", "photo.jpg")) == "error: --heatmaps FILE: not a folder"


def test_ledger_history_of_an_unknown_item_is_not_found(here: Path) -> None:
    data = _server(here)
    said = _refused(_run("ledger", "history", "itm_unknown", AUTHENTICATOR_DATA_DIR=str(data)))
    assert said == "error: the log holds no entry for item itm_unknown"
    res = _run("ledger", "history", "item-1", AUTHENTICATOR_DATA_DIR=str(data))
    assert res.exit_code == 0 and json.loads(res.stdout)["entries"], res.output


def _problem(status: int, title: str, detail: str) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": "x"}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


@pytest.mark.parametrize(
    ("status", "title", "code"),
    [(401, "Unauthorized", 2), (403, "Forbidden", 2), (404, "Not Found", 2), (409, "Conflict", 1), (500, "", 2)],
)
def test_lab_sign_and_revoke_say_the_servers_refusal_in_one_line(
    here: Path, monkeypatch: pytest.MonkeyPatch, status: int, title: str, code: int
) -> None:
    assert _run("lab", "keygen", "--out", "lab.key").exit_code == 0
    answer = _problem(status, title, "the detail the server gave")

    def post(*_args: Any, **_kwargs: Any) -> httpx.Response:
        return answer

    monkeypatch.setattr(httpx, "post", post)
    sign = _run(
        "lab", "sign", "itm_1", "--outcome", "authentic", "--method", "UV", "--lab-id", "lab_1",
        "--date", "2026-11-20", "--key", "lab.key", "--url", "http://server", "--api-key", "wrong",
    )  # fmt: skip
    revoke = _run("lab", "revoke", "crt_1", "--reason", "typo", "--url", "http://server", "--api-key", "wrong")
    for res in (sign, revoke):
        said = _refused(res, code)
        assert said.startswith(f"error: the server answered {status}: ") and "the detail the server gave" in said
        assert res.stdout == ""


def test_a_bad_setting_value_is_one_line_naming_it(here: Path) -> None:
    said = _refused(_run("photos", "purge", AUTHENTICATOR_PHOTO_RETENTION_DAYS="abc"))
    assert said.startswith("error: invalid setting AUTHENTICATOR_PHOTO_RETENTION_DAYS: ") and "'abc'" in said
