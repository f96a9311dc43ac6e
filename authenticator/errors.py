"""The one exception tree of the project.

Every error the core raises derives from :class:`AuthenticatorError`, so callers (the API,
the CLI) map the whole tree to responses or exit codes in one place. Each class carries a
stable ``code`` string for machine consumption and a human message.
"""

from __future__ import annotations


class AuthenticatorError(Exception):
    """Base of every error raised on purpose by the authenticator package."""

    code = "error"
    #: HTTP status that best describes this error when it reaches an API client.
    http_status = 500

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# --- Configuration -------------------------------------------------------------------------
class ConfigurationError(AuthenticatorError):
    """Settings or files the process needs at start-up are missing or unsafe."""

    code = "configuration_error"


# --- Ledger --------------------------------------------------------------------------------
class LedgerError(AuthenticatorError):
    """Base for errors of the provenance ledger."""

    code = "ledger_error"


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof does not verify or is malformed."""

    code = "invalid_proof"
    http_status = 422


class CheckpointError(LedgerError):
    """A signed note / checkpoint is malformed or its signature does not verify."""

    code = "invalid_checkpoint"
    http_status = 422


class IntegrityError(LedgerError):
    """Stored log data does not match what its hashes commit to (tampering or corruption)."""

    code = "integrity_violation"


class AppendOnlyViolation(IntegrityError):
    """Something tried to change or remove an entry of the append-only log."""

    code = "append_only_violation"
    http_status = 409


class WitnessRefusal(LedgerError):
    """A witness (C2SP tlog-witness) will not cosign a checkpoint; ``http_status`` is the status
    the protocol gives the refusal (400, 403, 404, 409, 413, 422)."""

    code = "witness_refused"
    http_status = 409

    def __init__(self, message: str, status: int, **details: object) -> None:
        super().__init__(message, status=status, **details)
        self.http_status = status


class EntryValidationError(LedgerError):
    """An entry or its body does not match the schema of its type."""

    code = "invalid_entry"
    http_status = 422


class StorageUnavailable(AuthenticatorError):
    """The database or the blob store cannot be reached or written right now; retry later."""

    code = "storage_unavailable"
    http_status = 503


class NotFound(AuthenticatorError):
    """The requested object (entry, item, listing, ...) does not exist."""

    code = "not_found"
    http_status = 404


class Conflict(AuthenticatorError):
    """The request conflicts with the current state (duplicate, already revoked, ...)."""

    code = "conflict"
    http_status = 409


class PromotionRefused(Conflict):
    """A candidate model does not meet the promotion rule against the serving model, its evaluation
    is not against the model serving now, or there is nothing to roll back to."""

    code = "promotion_refused"


# --- Access --------------------------------------------------------------------------------
class AuthenticationError(AuthenticatorError):
    """No credentials, or credentials that match no key."""

    code = "unauthenticated"
    http_status = 401


class PermissionDenied(AuthenticatorError):
    """The caller is known but may not do this (wrong role, not the owner)."""

    code = "forbidden"
    http_status = 403


# --- Input ---------------------------------------------------------------------------------
class InvalidInput(AuthenticatorError):
    """A request is well-formed HTTP but its content is wrong."""

    code = "invalid_input"
    http_status = 422


class DatasetTooSmall(InvalidInput):
    """A training dataset below the minimum the model lifecycle trains on."""

    code = "dataset_too_small"


class SignatureError(InvalidInput):
    """A signature made by a third party (a lab's certificate) does not verify."""

    code = "invalid_signature"


# --- Vision --------------------------------------------------------------------------------
class ImageError(InvalidInput):
    """Base for photos that cannot be decoded safely."""

    code = "invalid_image"


class UnsupportedFormat(ImageError):
    """Not a JPEG, PNG, WebP or HEIC/HEIF image (or an animated one)."""

    code = "unsupported_format"
    http_status = 415


class CorruptImage(ImageError):
    """The file claims a supported format but is corrupt or truncated."""

    code = "corrupt_image"


class ImageTooLarge(ImageError):
    """The file or its pixel count is over the configured limit."""

    code = "image_too_large"
    http_status = 413


class DecompressionBomb(ImageTooLarge):
    """The header announces far more pixels than allowed; refused before decoding."""

    code = "decompression_bomb"


class PixelBudgetExceeded(ImageTooLarge):
    """The photos of one request together announce more pixels than a request may decode;
    refused from their headers, before any of them is decoded."""

    code = "pixel_budget_exceeded"


class ImageTooSmall(ImageError):
    """The short side is below the configured minimum; details cannot be judged."""

    code = "image_too_small"


class NoUsablePhoto(InvalidInput):
    """None of the photos of a submission can be used (unreadable, failed the quality check, or
    not the kind of object the model knows): refused with the reasons, nothing recorded."""

    code = "no_usable_photo"


class ModelError(AuthenticatorError):
    """The model files are missing, do not match their card, or cannot be loaded."""

    code = "model_error"


# --- HTTP API (issue 5) ----------------------------------------------------------------------
class BadRequest(AuthenticatorError):
    """The request cannot be read at all (malformed JSON, a header that is not what it says)."""

    code = "bad_request"
    http_status = 400


class PayloadTooLarge(InvalidInput):
    """The request body is bigger than the configured limit; it was refused before being read."""

    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(InvalidInput):
    """The request's Content-Type is not the one this endpoint reads."""

    code = "unsupported_media_type"
    http_status = 415


class IdempotencyConflict(Conflict):
    """An ``Idempotency-Key`` was reused for a different request, or its first use is still running."""

    code = "idempotency_conflict"
