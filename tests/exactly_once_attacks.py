"""The attacks of issue 11 ("one write, one entry"): bursts of identical requests per command.

Shared by the in-process tests (ASGI, threads of one process) and the live-server tests
(``--workers 2``, two servers on one PostgreSQL database). ``post(i, path, **kw)`` sends the
i-th request of a burst; every request of a burst is released at once by a barrier.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.api_helpers import bearer, certificate_envelope, photo_files, real_photos


class Answer(Protocol):
    status_code: int
    text: str

    def json(self) -> Any: ...


Post = Callable[..., Answer]
"""``post(i, path, **httpx_kwargs)``: the i-th request of a burst (i picks a server, say)."""
Get = Callable[[str], Answer]


def burst(n: int, send: Callable[[int], Answer]) -> list[Answer]:
    """``n`` requests released together (threads behind a barrier)."""
    barrier = threading.Barrier(n)

    def one(i: int) -> Answer:
        barrier.wait(timeout=60)
        return send(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def statuses(answers: list[Answer]) -> Counter[int]:
    return Counter(a.status_code for a in answers)


def trace_types(get: Get, item: str) -> Counter[str]:
    trace = get(f"/v1/items/{item}/trace")
    assert trace.status_code == 200, trace.text
    return Counter(json.loads(base64.b64decode(e["entry"]))["type"] for e in trace.json()["events"])


def exactly_one(answers: list[Answer], success: int) -> Answer:
    """One answer ``success``, every other 409 problem+json; return the successful one."""
    counts = statuses(answers)
    assert counts == Counter({success: 1, 409: len(answers) - 1}), (counts, [a.text[:200] for a in answers][:5])
    return next(a for a in answers if a.status_code == success)


@dataclass
class Keys:
    platform: str
    lab: str
    lab_id: str
    lab_key: Ed25519PrivateKey


def run_attacks(post: Post, get: Get, keys: Keys, n: int) -> str:
    """Every command attacked with ``n`` identical requests; returns the item id. Asserts one
    entry and one success per command, and the answers the others get."""
    p, lab = bearer(keys.platform), bearer(keys.lab)

    # Register: identical bodies with one Idempotency-Key are one item, answered alike.
    body = {"category": "sneaker", "brand": "Nike", "model": "Air Force 1", "serial_number": "SN-1"}
    answers = burst(n, lambda i: post(i, "/v1/items", json=body, headers={**p, "Idempotency-Key": "reg-1"}))
    assert statuses(answers) == Counter({201: n}), [a.text[:200] for a in answers]
    item = answers[0].json()["id"]
    assert {a.json()["id"] for a in answers} == {item}
    assert {a.json()["receipt"]["index"] for a in answers} == {answers[0].json()["receipt"]["index"]}

    # Assess: the same photos twice are one verdict.
    files = photo_files(real_photos(2, offset=9))
    answers = burst(n, lambda i: post(i, f"/v1/items/{item}/assessments", files=files, headers=p))
    first = exactly_one(answers, 201).json()
    assert all(a.json()["code"] == "conflict" for a in answers if a.status_code == 409)
    # ...and with one Idempotency-Key, a retry burst is answered with the first receipt.
    more = photo_files(real_photos(1, offset=12))
    answers = burst(
        n, lambda i: post(i, f"/v1/items/{item}/assessments", files=more, headers={**p, "Idempotency-Key": "asm-2"})
    )
    assert statuses(answers) == Counter({201: n}), [a.text[:200] for a in answers]
    assert len({a.json()["receipt"]["index"] for a in answers}) == 1
    assert first["id"] != answers[0].json()["id"]

    # Attach one certificate n times.
    envelope = certificate_envelope(keys.lab_key, item, keys.lab_id)
    answers = burst(n, lambda i: post(i, f"/v1/items/{item}/certificates", json=envelope, headers=lab))
    cert = exactly_one(answers, 201).json()["id"]

    # Publish the item's listing n times, then close it n times.
    listing = {"item_id": item, "title": "AF1 '07", "price": "120", "currency": "EUR"}
    answers = burst(n, lambda i: post(i, "/v1/listings", json=listing, headers=p))
    listing_id = exactly_one(answers, 201).json()["id"]
    assert {a.json().get("listing_id") for a in answers if a.status_code == 409} == {listing_id}

    # Custody: the same transfer n times.
    answers = burst(n, lambda i: post(i, f"/v1/items/{item}/custody", json={"event": "sold"}, headers=p))
    exactly_one(answers, 201)

    answers = burst(n, lambda i: post(i, f"/v1/listings/{listing_id}/close", json={"reason": "sold"}, headers=p))
    exactly_one(answers, 200)

    # Revoke the certificate n times, each with another reason: one revocation, one reason.
    answers = burst(
        n,
        lambda i: post(i, f"/v1/certificates/{cert}/revocation", json={"reason": f"reason {i}"}, headers=lab),
    )
    revoked = exactly_one(answers, 201).json()
    assert revoked["status"] == "revoked"

    types = trace_types(get, item)
    assert types == Counter(
        {
            "item.registered": 1,
            "assessment.recorded": 2,
            "certificate.attached": 1,
            "listing.published": 1,
            "custody.transferred": 1,
            "listing.closed": 1,
            "certificate.revoked": 1,
        }
    ), types
    assert get(f"/v1/certificates/{cert}").json()["revocation_reason"] == revoked["revocation_reason"]
    assert get(f"/v1/items/{item}").json()["badge"]["level"] == "warning"
    assert get(f"/v1/listings/{listing_id}").json()["status"] == "closed"
    return item


def check_after_restart(get: Get, item: str) -> None:
    """What a restarted server answers about the attacked item."""
    assert get(f"/v1/items/{item}").json()["badge"]["level"] == "warning"
    types = trace_types(get, item)
    assert types["certificate.attached"] == 1 and types["certificate.revoked"] == 1
