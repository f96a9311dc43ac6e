"""Labs and their certificates."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.auth import Admin, Ctx, LabRole, PresentedKey
from api.routers.common import IdempotencyKeyHeader, answered, errors
from api.schemas import LabCreate, Revocation
from authenticator.contracts.labs import Certificate, Lab, LabCreated, LabList
from authenticator.services import certificates, labs
from authenticator.services.registrations import Caller

router = APIRouter(tags=["labs and certificates"])


@router.post("/v1/labs", status_code=201, response_model=LabCreated, responses=errors(401, 403, 409, 413, 415, 422))
def register_lab(
    body: LabCreate,
    principal: Admin,
    presented: PresentedKey,
    ctx: Ctx,
    idempotency_key: IdempotencyKeyHeader = None,
) -> LabCreated:
    """Register an appraisal lab with its Ed25519 public key (admin); answers the lab's API key once.

    A public key already registered gets 409 naming its lab (`lab_id`), nothing created.
    Retry-safe with an `Idempotency-Key`: the same key and body from the same admin key get the
    first answer, its API key included, for 24 hours (after that, or from another key of the same
    admin, 409 naming the lab and key id); another body with the key gets 409."""
    caller = Caller(principal, presented)
    return labs.register_lab(ctx, caller, body.name, body.accreditation, body.public_key, key=idempotency_key)


@router.get("/v1/labs", response_model=LabList)
def list_labs(ctx: Ctx) -> LabList:
    """Public: every registered lab with its accreditation and key, oldest first.

    Where a seller sends an item for the physical inspection an `inconclusive` verdict needs, or to
    contest a `counterfeit` one: the lab's certificate outranks the photo verdict on the badge."""
    return labs.list_labs(ctx)


@router.get("/v1/labs/{lab_id}", response_model=Lab, responses=errors(404))
def get_lab(lab_id: str, ctx: Ctx) -> Lab:
    """Public: a lab and its public key, so anyone can check its certificates' signatures."""
    return labs.get_lab(ctx, lab_id)


@router.get("/v1/certificates/{certificate_id}", response_model=Certificate, responses=errors(404))
def get_certificate(certificate_id: str, ctx: Ctx) -> Certificate:
    """Public: a certificate, its status, and the lab's signed envelope."""
    return certificates.get_certificate(ctx, certificate_id)


@router.post(
    "/v1/certificates/{certificate_id}/revocation",
    status_code=201,
    response_model=Certificate,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
def revoke_certificate(
    certificate_id: str,
    body: Revocation,
    principal: LabRole,
    ctx: Ctx,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Certificate | JSONResponse:
    """Revoke a certificate (the issuing lab only). Appends `certificate.revoked`; the badge turns to a warning.

    A second revocation gets 409 (with the same `Idempotency-Key`, the first answer)."""
    return answered(
        response, certificates.revoke_certificate(ctx, principal, certificate_id, body.reason, key=idempotency_key)
    )
