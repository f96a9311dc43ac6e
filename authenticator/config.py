"""Settings, read from the environment (prefix ``AUTHENTICATOR_``) when they are built.

Build a :class:`Settings` where it is used (``create_app``, the CLI); never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of the service, with safe defaults for a single-machine install."""

    model_config = SettingsConfigDict(env_prefix="AUTHENTICATOR_", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Where the SQLite file, keys and blobs live.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/authenticator.db. "
        "Use postgresql+psycopg://... for production.",
    )
    log_origin: str = Field(default="authenticator.local/log", description="Checkpoint origin line.")
    log_key_path: Path | None = Field(
        default=None, description="Ed25519 private key of the log; default <data_dir>/log.key (created 0600)."
    )
    weights_dir: Path = Field(default=REPO_ROOT / "weights", description="Folder with <name>.onnx + card.")
    model_name: str = Field(default="authenticator", description="Name of the shipped model in weights_dir.")
    # --- HTTP API (issue 5) ---
    api_max_body_bytes: int = Field(
        default=64 * 1024 * 1024, description="Largest request body the API reads; bigger ones get 413 before reading."
    )
    api_max_photos: int = Field(default=12, description="Most photos in one assessment request.")
    api_max_json_bytes: int = Field(default=256 * 1024, description="Largest JSON request body (items, certificates).")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'authenticator.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        """Content-addressed blobs (photos, envelopes, listing titles): ``<data_dir>/blobs``."""
        return self.data_dir / "blobs"

    @property
    def resolved_log_key_path(self) -> Path:
        return self.log_key_path if self.log_key_path is not None else self.data_dir / "log.key"
