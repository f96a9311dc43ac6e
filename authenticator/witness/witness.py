"""The witness's checks (C2SP tlog-witness ``add-checkpoint``), without HTTP.

In the order the spec gives them: a malformed request is 400; an origin the witness has no key
for is 404; a checkpoint no trusted key of that origin signed is 403; ``old`` larger than the
checkpoint is 400; ``old`` that is not the size the witness last cosigned is 409 with that size
(a smaller tree after a larger one always lands here); the same size with another root is 409 (a
fork); a consistency proof that does not verify is 422. Otherwise the new checkpoint is recorded
and only then is the cosignature line returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from authenticator.errors import AuthenticatorError, CheckpointError, ConfigurationError, WitnessRefusal
from authenticator.ledger.checkpoint import Checkpoint, load_or_create_ed25519_key
from authenticator.ledger.cosignature import CosignatureSigner
from authenticator.ledger.merkle import verify_consistency
from authenticator.ledger.note import NoteVerifier, is_valid_key_name, note_signatures, open_note
from authenticator.witness.protocol import AddCheckpoint, parse_add_checkpoint
from authenticator.witness.store import WitnessStore


@dataclass(frozen=True)
class Cosigned:
    """A successful ``add-checkpoint``: the checkpoint and the witness's signature line(s)."""

    checkpoint: Checkpoint
    lines: str


def logs_by_origin(log_keys: Sequence[str]) -> dict[str, list[NoteVerifier]]:
    """Log verifier keys grouped by origin: a log's key name is its origin (tlog-checkpoint)."""
    out: dict[str, list[NoteVerifier]] = {}
    for vkey in log_keys:
        try:
            verifier = NoteVerifier.from_verifier_key(vkey.strip())
        except CheckpointError as exc:
            raise ConfigurationError(f"log key {vkey!r}: {exc.message}") from exc
        out.setdefault(verifier.name, []).append(verifier)
    return out


class Witness:
    """Cosigns checkpoints of the configured logs, each consistent with the last it cosigned."""

    def __init__(
        self,
        signer: CosignatureSigner,
        logs: Mapping[str, Sequence[NoteVerifier]],
        store: WitnessStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not logs:
            raise ValueError("a witness needs at least one log key")
        self.signer = signer
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self.store = store
        self._clock = clock

    def add_checkpoint(self, body: bytes) -> Cosigned:
        """Check and cosign one request; raises :class:`WitnessRefusal` with the spec's status."""
        request = parse_add_checkpoint(body)
        cp, text = self._verified_checkpoint(request)
        if request.old_size > cp.size:
            raise WitnessRefusal(f"old size {request.old_size} is larger than the checkpoint's {cp.size}", 400)
        if request.old_size == 0 and request.proof:
            raise WitnessRefusal("the consistency proof must be empty when the old size is 0", 400)
        refusal: WitnessRefusal | None = None
        evidence = False  # a validly signed request that shows the log misbehaving: kept
        with self.store.transaction() as tx:
            latest = tx.latest(cp.origin)
            known = latest.size if latest is not None else 0
            if request.old_size != known:
                refusal = WitnessRefusal(
                    f"old size {request.old_size} is not the size last cosigned for {cp.origin} ({known})",
                    409,
                    size=known,
                )
            elif latest is not None and request.old_size == cp.size and latest.root != cp.root_hash:
                refusal = WitnessRefusal(
                    f"a checkpoint of size {cp.size} with another root was cosigned before: the log forked", 409
                )
                evidence = True
            elif latest is not None and request.old_size > 0:
                try:
                    verify_consistency(request.old_size, cp.size, request.proof, latest.root, cp.root_hash)
                except AuthenticatorError as exc:
                    refusal = WitnessRefusal(f"the consistency proof does not verify: {exc.message}", 422)
                    evidence = True
            if refusal is not None:
                if evidence:
                    tx.keep_evidence(cp.origin, refusal.http_status, refusal.message, body)
            else:
                now = int(self._clock())
                lines = self.signer.cosign(text, now)
                tx.record(cp.origin, cp.size, cp.root_hash, request.note, now)
        if refusal is not None:
            raise refusal
        return Cosigned(cp, lines)

    def _verified_checkpoint(self, request: AddCheckpoint) -> tuple[Checkpoint, str]:
        try:
            text, _ = note_signatures(request.note)
            cp = Checkpoint.parse(text)
        except CheckpointError as exc:
            raise WitnessRefusal(f"malformed checkpoint: {exc.message}", 400) from exc
        keys = self.logs.get(cp.origin)
        if not keys:
            raise WitnessRefusal(f"unknown log origin {cp.origin!r}", 404)
        try:
            open_note(request.note, keys)
        except CheckpointError as exc:
            raise WitnessRefusal(f"no trusted signature of {cp.origin}: {exc.message}", 403) from exc
        return cp, text


KEY_FILE = "witness.key"
STATE_FILE = "witness.db"


def open_witness(data_dir: Path, name: str, log_keys: Sequence[str]) -> Witness:
    """The witness whose key (``witness.key``, Ed25519 PEM, 0600, made on first use) and state
    (``witness.db``) live in ``data_dir``, witnessing the logs of ``log_keys`` (C2SP verifier
    keys; each key's name is its log's origin)."""
    if not is_valid_key_name(name):
        raise ConfigurationError(f"witness name {name!r} cannot be a key name: non-empty, no spaces, no '+'")
    logs = logs_by_origin(log_keys)
    if not logs:
        raise ConfigurationError("a witness needs at least one log verifier key (--log)")
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = load_or_create_ed25519_key(data_dir / KEY_FILE, "witness key")
    return Witness(CosignatureSigner(name, key), logs, WitnessStore(data_dir / STATE_FILE))
