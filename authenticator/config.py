"""Settings, read from the environment (prefix ``AUTHENTICATOR_``) when they are built.

Build a :class:`Settings` where it is used (``create_app``, the CLI); never at import time.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from authenticator.errors import CheckpointError
from authenticator.ledger.cosignature import CosignatureVerifier
from authenticator.vision.quality_thresholds import QualityThresholds

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The quality gate's calibrated defaults, written once in QualityThresholds.
_GATE = QualityThresholds()


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
    witnesses: str | None = Field(
        default=None,
        description="Witnesses the log submits each new checkpoint to (C2SP tlog-witness), one per line or "
        "separated by commas: '<submission URL prefix> <witness verifier key>', e.g. 'https://w.example.org "
        "w.example.org/w1+1a2b3c4d+BA...'. Their cosignatures are served with the checkpoint.",
    )
    witness_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long the log waits for one witness's answer."
    )
    weights_dir: Path = Field(default=REPO_ROOT / "weights", description="Folder with <name>.onnx + card.")
    model_name: str = Field(default="authenticator", description="Name of the shipped model in weights_dir.")
    # --- HTTP API (issue 5) ---
    api_max_body_bytes: int = Field(
        default=64 * 1024 * 1024, description="Largest request body the API reads; bigger ones get 413 before reading."
    )
    api_max_photos: int = Field(default=12, description="Most photos in one assessment request.")
    api_max_json_bytes: int = Field(default=256 * 1024, description="Largest JSON request body (items, certificates).")
    api_max_header_bytes: int = Field(
        default=32 * 1024, description="Largest request head (request line + headers); bigger ones get 431."
    )
    api_max_url_bytes: int = Field(default=8 * 1024, description="Longest request target (path + query); 414 above.")
    public_url: str | None = Field(
        default=None,
        description="The service's public base URL (http or https, no query or fragment), e.g. "
        "https://auth.example.com: the address printed on pages, in QR codes and in CLI hints. Never taken from "
        "the Host header; unset, pages use relative links and the QR code holds the page's path only.",
    )
    trusted_proxies: str | None = Field(
        default=None,
        description="Comma-separated IP addresses or networks (CIDR) of the TLS-terminating reverse proxies in "
        "front of the service, e.g. 127.0.0.1 or 10.0.0.0/8. Only requests that come from them have their "
        "X-Forwarded-Proto and X-Forwarded-For headers believed (uvicorn's proxy_headers / forwarded_allow_ips); "
        "unset, no forwarded header is believed. Pages take their address from public_url either way.",
    )
    upload_rate_per_minute: int = Field(
        default=600,
        ge=0,
        description="Uploads (assessments, certificates) per minute and API key, per worker process; a minute's "
        "worth may come as a burst, then 429 with Retry-After. 0 turns the limit off.",
    )
    # --- Vision runtime (issue 4); gate_* defaults are QualityThresholds' (docs/vision-thresholds.md) ---
    vision_max_photo_bytes: int = Field(default=25 * 1024 * 1024, description="Largest photo file accepted.")
    vision_max_megapixels: float = Field(default=50.0, description="Most pixels (from the header) decoded.")
    vision_min_short_side: int = Field(default=64, description="Smaller images are refused at decode.")
    vision_max_request_megapixels: float = Field(
        default=200.0,
        gt=0,
        description="Most pixels one assessment request may decode, all its photos together, as read from their "
        "headers before any decoding (large JPEGs count at their reduced decode size, ~1 MP). 200 takes 12 "
        "photos of 12 MP or 4 of 48 MP as PNG/WebP/HEIC; a request over it is refused (413 "
        "pixel_budget_exceeded) before a pixel is decoded.",
    )
    vision_reduced_decode: bool = Field(
        default=True, description="Decode large JPEGs at 1/2-1/8 scale, keeping twice the network input size."
    )
    gate_min_short_side: int = Field(
        default=_GATE.min_short_side, description="Quality gate: low_resolution below this."
    )
    gate_min_sharpness: float = Field(default=_GATE.min_sharpness, description="Variance of the Laplacian at 384 px.")
    gate_max_dark_fraction: float = Field(
        default=_GATE.max_dark_fraction, description="Share of pixels with luma <= 16."
    )
    gate_min_luma_p90: float = Field(
        default=_GATE.min_luma_p90, description="90th percentile of luma; lower is underexposed."
    )
    gate_max_centre_bright_fraction: float = Field(
        default=_GATE.max_centre_bright_fraction, description="Clipped share of the centre."
    )
    gate_max_luma_p10: float = Field(
        default=_GATE.max_luma_p10, description="10th percentile of luma; higher is overexposed."
    )
    gate_min_contrast: float = Field(default=_GATE.min_contrast, description="Standard deviation of luma.")
    gate_max_glare_fraction: float = Field(
        default=_GATE.max_glare_fraction, description="Saturated blobs away from the border."
    )
    gate_min_object_fraction: float = Field(
        default=_GATE.min_object_fraction, description="Bounding box of the detail / frame."
    )
    ort_intra_op_threads: int = Field(
        default=1,
        description="onnxruntime threads per inference (0 = all cores). 1 measured faster than 2 on the shared "
        "2-core machine and lets concurrent requests use the other core (docs/vision-bench.md).",
    )
    ort_inter_op_threads: int = Field(default=1, description="onnxruntime parallel graph branches.")
    ort_max_batch: int = Field(
        default=1,
        description="Most images per onnxruntime call where a batch is run (the occlusion heat maps; an assessment "
        "scores each photo on its own); each 448 px image of a batch pins ~100 MB of arena for good and batching "
        "gains nothing on 2 cores (docs/vision-bench.md).",
    )
    vision_threads: int = Field(
        default=0,
        ge=0,
        description="Worker threads per process that take the photos of an assessment in parallel: each photo's "
        "decode, quality gate, preprocessing and single-image onnxruntime run on one thread (PIL, OpenCV, numpy and "
        "onnxruntime release the GIL), so one request uses every core instead of one. The pool is shared by "
        "concurrent requests. 0 = min(4, CPU count); 1 = no pool, the photos one after the other in the request's "
        "thread. How many of the runs overlap is ort_max_concurrent_runs.",
    )
    ort_max_concurrent_runs: int = Field(
        default=2,
        ge=0,
        description="Most onnxruntime runs at once in this process (the photos and heat maps of all requests "
        "together; 0 = no limit). onnxruntime's arena keeps the high-water mark of the runs in flight together for "
        "good. Measured on 2 cores, 4 photos of 1600x1200, vision_threads 2: going from 1 to 2 runs took an "
        "assessment from ~55 to ~50 ms p50 for +15 MB resident (228 MB) with the INT8 448 px model, and from ~120 "
        "to ~90 ms for +60-80 MB (~380-400 MB, over the 300 MB budget: use 1) with the float one.",
    )
    enable_unvalidated_categories: bool = Field(
        default=False, description="Give verdicts for categories the model card has no validated metrics for."
    )
    unfamiliar_photo_gate: bool = Field(
        default=True,
        description="Leave out of the verdict every photo whose embedding is farther from the reference bank than "
        "the card's distance_threshold (reason unfamiliar_photo); with none left the item is inconclusive. The "
        "card's per-source false-pass figures 'with the unfamiliar-photo gate' assume it is on.",
    )
    ood_distance_threshold: float | None = Field(
        default=None, description="Override the card's embedding-distance threshold for the unfamiliar-photo gate."
    )
    ood_category_distance_threshold: float | None = Field(
        default=None,
        description='Override the card\'s (looser) embedding-distance threshold under which the "what is it?" '
        "check takes the reference bank's category.",
    )
    ood_imagenet_min_prob: float | None = Field(
        default=None,
        description="Override the card's ImageNet probability mass that (with the category's classes "
        "outweighing any other single class) identifies a category without the bank; see docs/vision-ood.md.",
    )
    phash_max_hamming: int = Field(default=8, description="pHash distance (of 64 bits) that counts as the same photo.")
    heatmap_grid: int = Field(default=7, description="Occlusion heat map: cells per side.")
    photo_retention_days: int | None = Field(
        default=None,
        ge=0,
        description="Photos (and their heat maps) older than this many days are erased by `authenticator photos "
        "purge` (run it from cron), each assessment's with a `photos.erased` entry; unset keeps photos.",
    )
    # --- Model lifecycle (issue 13) ---
    models_dir: Path | None = Field(
        default=None,
        description="Where promoted and shadow models are kept, one folder per model (<models_dir>/<sha256>/: "
        "ONNX, card, bank, evaluation); default <data_dir>/models. Every server of a deployment must see it.",
    )
    shadow_queue_size: int = Field(
        default=8,
        ge=0,
        description="Live assessments waiting to be scored by each shadow model, per worker process; more are "
        "dropped (and counted) so a shadow never delays a verdict. 0 turns shadow scoring off.",
    )
    model_watch_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How often each worker process checks the log for a promotion or rollback while it "
        "answers no request (requests check it themselves); 0 turns the background check off.",
    )

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        """An absolute http(s) URL without query, fragment or credentials; trailing slashes dropped."""
        if value is None or not value.strip():
            return None
        value = value.strip()
        try:
            parts = urlsplit(value)
            port_ok = parts.port is None or parts.port > 0
        except ValueError as exc:
            raise ValueError(f"public_url is not a URL: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            raise ValueError("public_url must be an absolute http:// or https:// URL, e.g. https://auth.example.com")
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("public_url must have no query string or fragment")
        if parts.username is not None or parts.password is not None:
            raise ValueError("public_url must not carry credentials")
        if any(not 0x21 <= ord(c) <= 0x7E or c in '<>"\\^`{|}' for c in value):
            raise ValueError("public_url has characters not allowed in a URL (write IDNs as punycode, %-encode paths)")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str | None) -> str | None:
        """IP addresses or networks only: never ``*`` (anyone could claim to be https or any client)."""
        if value is None or not value.strip():
            return None
        entries = [v.strip() for v in value.split(",") if v.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8); "
                    "name the proxies' addresses, never '*'"
                ) from exc
        return ",".join(entries)

    @field_validator("witnesses")
    @classmethod
    def _check_witnesses(cls, value: str | None) -> str | None:
        """Each entry an http(s) URL and a cosignature verifier key (type 0x04)."""
        if value is None or not value.strip():
            return None
        parse_witnesses(value)
        return value.strip()

    @property
    def witness_list(self) -> list[tuple[str, str]]:
        """``witnesses`` as ``(submission URL prefix, verifier key)`` pairs."""
        return parse_witnesses(self.witnesses) if self.witnesses else []

    @property
    def trusted_proxy_list(self) -> list[str]:
        """``trusted_proxies`` as a list (empty: believe no forwarded header)."""
        return self.trusted_proxies.split(",") if self.trusted_proxies else []

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'authenticator.db').resolve()}"

    @property
    def quality_thresholds(self) -> QualityThresholds:
        """The ``gate_*`` settings as the quality gate's limits (one setting per field)."""
        return QualityThresholds(**{f.name: getattr(self, f"gate_{f.name}") for f in fields(QualityThresholds)})

    @property
    def resolved_vision_threads(self) -> int:
        """``vision_threads`` with 0 resolved to min(4, CPU count)."""
        return self.vision_threads or min(4, os.cpu_count() or 1)

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @property
    def blob_dir(self) -> Path:
        """Content-addressed blobs (photos, envelopes, listing titles): ``<data_dir>/blobs``."""
        return self.data_dir / "blobs"

    @property
    def resolved_log_key_path(self) -> Path:
        return self.log_key_path if self.log_key_path is not None else self.data_dir / "log.key"


def parse_witnesses(value: str) -> list[tuple[str, str]]:
    """``'<url> <vkey>'`` entries, separated by newlines or commas; ValueError on a bad one."""
    out: list[tuple[str, str]] = []
    for entry in value.replace(",", "\n").split("\n"):
        if not entry.strip():
            continue
        parts = entry.split()
        if len(parts) != 2:
            raise ValueError(f"witnesses: {entry.strip()!r} is not '<URL> <verifier key>'")
        url, vkey = parts
        parsed = urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
            raise ValueError(f"witnesses: {url!r} is not an http(s) URL prefix without query or fragment")
        try:
            CosignatureVerifier.from_verifier_key(vkey)
        except CheckpointError as exc:
            raise ValueError(f"witnesses: {vkey!r}: {exc.message}") from exc
        out.append((url.rstrip("/"), vkey))
    if len({v for _, v in out}) != len(out):
        raise ValueError("witnesses: a witness key is listed twice")
    return out
