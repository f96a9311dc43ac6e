"""Helpers shared by the ledger tests: realistic entries, the CLI in a subprocess, tampering."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from authenticator.ledger.log import Ledger, NewEntry

REPO_ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "test.authenticator.local/log"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sample_entry(i: int, item: str) -> NewEntry:
    """A realistic entry of one of four types, chosen by ``i``."""
    kind = i % 4
    if kind == 0:
        body: dict[str, Any] = {
            "category": "bag",
            "brand": "Hermès",
            "model": "Birkin 30",
            "serial_commitment": _sha(f"serial-{i}"),
            "platform": "platform-1",
        }
        return NewEntry("item.registered", item, body)
    if kind == 1:
        photos = [_sha(f"photo-{i}-{k}") for k in range(3)]
        body = {
            "assessment_id": f"as-{i}",
            "photo_sha256": photos,
            "model_sha256": _sha("model"),
            "model_version": "1.0.0",
            "decision": "authentic",
            "probability_authentic": 0.9731,
            "per_photo": [
                {"sha256": p, "probability_authentic": 0.95, "category": "bag", "reasons": []} for p in photos
            ],
            "thresholds": {"authentic_above": 0.9, "counterfeit_below": 0.2},
            "reasons": ["clear_photos"],
        }
        return NewEntry("assessment.recorded", item, body)
    if kind == 2:
        body = {
            "listing_id": f"li-{i}",
            "platform": "platform-1",
            "title_sha256": _sha(f"title-{i}"),
            "price": "1250.00",
            "currency": "EUR",
        }
        return NewEntry("listing.published", item, body)
    body = {"event": "consigned", "platform": "platform-1", "counterparty_commitment": _sha(f"party-{i}")}
    return NewEntry("custody.transferred", item, body)


def sample_entries(n: int, *, items: int = 50, start: int = 0, prefix: str = "item") -> list[NewEntry]:
    return [sample_entry(i, f"{prefix}-{i % items}") for i in range(start, start + n)]


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def cli_env(key_path: Path, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AUTHENTICATOR_DATA_DIR=str(tmp_path / "data"),
        AUTHENTICATOR_LOG_KEY_PATH=str(key_path),
        AUTHENTICATOR_LOG_ORIGIN=ORIGIN,
        PYTHONPATH=str(REPO_ROOT),
    )
    return env


def run_cli(args: list[str], key_path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``authenticator <args>`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-c", "from authenticator.cli import app; app(prog_name='authenticator')", *args],
        env=cli_env(key_path, tmp_path),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def drop_triggers(led: Ledger) -> None:
    """Remove the append-only triggers, as an attacker with database access could."""
    with led.engine.begin() as conn:
        for table in ("log_entries", "log_nodes", "log_checkpoints"):
            if led.engine.dialect.name == "sqlite":
                conn.exec_driver_sql(f"DROP TRIGGER {table}_refuse_update")
                conn.exec_driver_sql(f"DROP TRIGGER {table}_refuse_delete")
            else:
                conn.exec_driver_sql(f"DROP TRIGGER {table}_refuse_change ON {table}")
                conn.exec_driver_sql(f"DROP TRIGGER {table}_refuse_truncate ON {table}")


# --- a real witnessed checkpoint (transparency.dev's staging log, four witnesses) ------------------

REAL_LOG_KEY = "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
REAL_TEXT = "arche2025h1.staging.ct.transparency.dev\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
REAL_NOTE = (
    REAL_TEXT
    + "\n"
    + "— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkpt"
    "QIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n"
    "— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei5"
    "9RA23oHP7Ry1k3ZFWwQ=\n"
    "— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4Ascyl"
    "P3v7sEodkRAErumC2q44vdgJY096st5BQ==\n"
    "— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNW"
    "VuE0tgh0XwzdZsDsUAQ==\n"
    "— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0Dr"
    "AWfBw==\n"
    "— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvK"
    "FYe/TmN9DAg==\n"
)
REAL_WITNESSES = [
    "transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM",
    "witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO",
    "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
]
REAL_TIMESTAMP = 0x6A122120  # the 8 bytes after each key id: AAAAAGoSISA...
ABSENT_WITNESS = "rgdd.se/poc-witness+db03732e+BCjJKlo6BU0xfIb8LutqerIFTWIXEA0L5n3tW3QyPFgG"
