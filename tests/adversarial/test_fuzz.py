"""Hostile input to the parsers: only the documented errors, never another exception or a hang.

Each target gets mutated valid inputs (so the fuzzer reaches deep into the parser) and raw
garbage, bounded so the suite stays fast (``FUZZ_EXAMPLES`` per target, 300 by default).
``HYPOTHESIS_PROFILE=long`` runs 20,000 per target (documented in the README), and a hang
is caught by the per-test timeout.

Targets: the image decoder (``decode_image``), the certificate DSSE envelope parser, the
checkpoint and signed-note parsers (and verifier keys), and the trace/proof JSON checked by
``authenticator trace verify`` (``verify_trace``, consistency proofs included).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from authenticator.dsse import envelope_payload, parse_envelope, sign_envelope, verify_envelope
from authenticator.errors import AuthenticatorError
from authenticator.ledger.checkpoint import Checkpoint, CheckpointSigner, verify_checkpoint
from authenticator.ledger.log import Ledger
from authenticator.ledger.note import NoteVerifier, open_note
from authenticator.services.traces import item_head_proof
from authenticator.trace_verify import TraceReport, verify_trace
from authenticator.vision.decode import DecodedImage, decode_image
from tests.image_samples import png_header
from tests.ledger_samples import ORIGIN, REPO_ROOT, sample_entries
from tests.live_server import free_port, run_cli

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
EXAMPLES = 20_000 if LONG else int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not LONG,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
pytestmark = pytest.mark.timeout(600 if LONG else 180)


# --- Mutations -----------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few byte flips, insertions, deletions, truncation or splicing."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, ord("\n"), ord(" ")]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
        else:
            end = min(len(data), at + draw(st.integers(1, 64)))
            data[at:at] = data[at:end]
    return bytes(data)


def _only_documented(fn: Any, *args: Any) -> Any:
    """Call ``fn``: its result, or None after one of the project's documented errors."""
    try:
        return fn(*args)
    except AuthenticatorError as exc:
        assert exc.message and exc.code, repr(exc)
        return None


# --- Images --------------------------------------------------------------------------------------


def _image_bytes(fmt: str, mode: str = "RGB", size: tuple[int, int] = (80, 72), **kw: Any) -> bytes:
    img = Image.linear_gradient("L").resize(size).convert(mode)  # not flat: the encoders have work to do
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


IMAGE_SEEDS = [
    _image_bytes("JPEG", quality=80),
    _image_bytes("JPEG", quality=80, progressive=True),
    _image_bytes("PNG"),
    _image_bytes("PNG", mode="RGBA"),
    _image_bytes("PNG", mode="L"),
    _image_bytes("WEBP", quality=70),
    _image_bytes("GIF", mode="P"),
    png_header(30_000, 30_000),
    png_header(100, 100),
]


@FUZZ
@given(data=st.one_of(mutated(IMAGE_SEEDS), st.binary(max_size=512)))
def test_decode_image_raises_only_image_errors(data: bytes) -> None:
    result = _only_documented(decode_image, data)
    assert result is None or isinstance(result, DecodedImage)
    if result is not None:
        assert result.rgb.ndim == 3 and result.rgb.shape[2] == 3 and result.rgb.dtype.name == "uint8"


def test_image_seeds_decode() -> None:
    """The seeds are real images (so the fuzzer starts from inputs that reach the decoder)."""
    decoded = [_only_documented(decode_image, s) for s in IMAGE_SEEDS]
    assert sum(isinstance(d, DecodedImage) for d in decoded) >= 6


# --- Certificate envelopes ---------------------------------------------------------------------

LAB_KEY = Ed25519PrivateKey.generate()
GOOD_ENVELOPE = sign_envelope(
    {"v": 1, "item_id": "itm_1", "lab_id": "lab_1", "outcome": "authentic", "inspection_date": "2026-11-20",
     "method": "physical", "photos": ["ab" * 32], "report_sha256": None},
    LAB_KEY,
)  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def altered_json(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one to three values (at any depth) replaced, removed or added."""
    out = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        node = out
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                node = child
                continue
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                node[key] = draw(json_values)
            elif action == "delete":
                del node[key]
            elif isinstance(node, dict):
                node[draw(st.text(max_size=8))] = draw(json_values)
            else:
                node.append(draw(json_values))
            break
    return out


def _envelope_checks(data: bytes) -> None:
    env = _only_documented(parse_envelope, data)
    if env is not None:
        _only_documented(verify_envelope, env, LAB_KEY.public_key())
    with contextlib.suppress(ValueError):  # its documented error (it reads stored envelopes)
        envelope_payload(data)


@FUZZ
@given(doc=altered_json(GOOD_ENVELOPE))
def test_envelope_parser_on_altered_envelopes(doc: Any) -> None:
    _envelope_checks(json.dumps(doc).encode())


@FUZZ
@given(data=st.one_of(mutated([json.dumps(GOOD_ENVELOPE).encode()]), st.binary(max_size=256)))
def test_envelope_parser_on_mutated_bytes(data: bytes) -> None:
    _envelope_checks(data)


def test_the_good_envelope_verifies() -> None:
    env = parse_envelope(json.dumps(GOOD_ENVELOPE).encode())
    assert verify_envelope(env, LAB_KEY.public_key()).sig


# --- Checkpoints and signed notes -----------------------------------------------------------------

SIGNER = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
NOTE = SIGNER.sign(Checkpoint(ORIGIN, 12345, bytes(range(32)), ("ext line",)))
NOTE_SEEDS = [NOTE.encode(), NOTE.split("\n\n")[0].encode() + b"\n", SIGNER.verifier_key.encode()]


def _note_checks(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    _only_documented(verify_checkpoint, text, SIGNER.verifier_key)
    _only_documented(verify_checkpoint, data, SIGNER.verifier_key, ORIGIN)
    _only_documented(open_note, text, [SIGNER.verifier])
    _only_documented(Checkpoint.parse, text)
    _only_documented(NoteVerifier.from_verifier_key, text.strip())


@FUZZ
@given(data=st.one_of(mutated(NOTE_SEEDS), st.binary(max_size=300)))
def test_note_and_checkpoint_parsers_on_mutated_notes(data: bytes) -> None:
    _note_checks(data)


@FUZZ
@given(lines=st.lists(st.text(alphabet="abc+/=0123456789 —\n\t.\u2014Ã", max_size=50), min_size=0, max_size=8))
def test_note_and_checkpoint_parsers_on_line_soup(lines: list[str]) -> None:
    _note_checks("\n".join(lines).encode())


def test_the_good_note_verifies() -> None:
    assert verify_checkpoint(NOTE, SIGNER.verifier_key).size == 12345


# --- Traces and proofs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trace_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    """A real trace of one item (5 events among 20 entries) with an old checkpoint and a
    consistency proof, built from a real ledger, exactly as ``GET /v1/items/{id}/trace`` has it."""
    root: Path = tmp_path_factory.mktemp("fuzztrace")
    with Ledger.open(f"sqlite:///{root / 'l.db'}", SIGNER) as led:
        led.append_batch(sample_entries(8, items=4))
        old = led.latest_checkpoint()
        led.append_batch(sample_entries(12, items=4, start=8))
        note, size, head = led.item_head("item-1")
        history = [e for e in led.entries(0, size) if e.item == "item-1"]
        trace = {
            "item_id": "item-1",
            "checkpoint": note,
            "verifier_key": SIGNER.verifier_key,
            "item_head": item_head_proof(head).model_dump(mode="json"),
            "events": [
                {
                    "index": e.index,
                    "entry": b64(e.data),
                    "leaf_hash": b64(e.leaf_hash),
                    "inclusion_proof": [b64(h) for h in led.inclusion_proof(e.index, size)],
                }
                for e in history
            ],
            "consistency": {
                "from": 8,
                "to": size,
                "hashes": [b64(h) for h in led.consistency_proof(8, size)],
            },
        }
    return trace, SIGNER.verifier_key, old


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_the_real_trace_verifies(trace_world: tuple[dict[str, Any], str, str]) -> None:
    trace, vkey, old = trace_world
    report = verify_trace(trace, vkey, old)
    assert report.ok, report.all_failures()
    assert len(report.events) == 5


@FUZZ
@given(data=st.data())
def test_trace_verify_on_altered_traces(trace_world: tuple[dict[str, Any], str, str], data: st.DataObject) -> None:
    trace, vkey, old = trace_world
    altered = data.draw(altered_json(trace))
    key = data.draw(st.sampled_from([vkey, vkey[:-2] + "A=", "x+y+z", ""]))
    report = _only_documented(verify_trace, altered, key, data.draw(st.sampled_from([old, None, "", old[:-3]])))
    assert isinstance(report, TraceReport)  # a report naming the failures, never an exception
    report.all_failures()
    if altered != trace and key == vkey:
        # Any change to what the checkpoint commits to is caught (extra unknown fields aside).
        changed_known = {k for k in set(trace) | set(altered) if trace.get(k) != altered.get(k)} - {"verifier_key"}
        if changed_known and report.ok:
            assert changed_known <= {"consistency"} or _equivalent(trace, altered)


def _equivalent(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether ``b`` carries the same checked data as ``a`` (extra keys on an event or in the
    item-head proof ignored). No prefix of the events passes any more: the checkpoint commits
    to the item's head, so a trace cut before its newest events fails."""
    fields = ("index", "entry", "leaf_hash", "inclusion_proof")
    events_a = [{f: e.get(f) for f in fields} for e in a["events"]]
    events_b = [{f: e.get(f) for f in fields} if isinstance(e, dict) else e for e in b.get("events", [])]
    same_head = _head_fields(a.get("item_head")) == _head_fields(b.get("item_head"))
    same_shown = a["item_id"] == b.get("item_id") and a["checkpoint"] == b.get("checkpoint")
    return bool(same_shown and events_a == events_b and same_head)


def _head_fields(head: Any) -> Any:
    """The checked fields of an item-head proof (unknown extra keys ignored)."""
    if not isinstance(head, dict):
        return head
    terminal = head.get("terminal")
    if isinstance(terminal, dict):
        terminal = {k: terminal.get(k) for k in ("key", "index", "leaf_hash", "count")}
    return (head.get("siblings"), terminal)


def test_a_trace_cut_before_its_newest_events_fails(trace_world: tuple[dict[str, Any], str, str]) -> None:
    """Whoever serves the trace cannot leave out the item's newest events (say, a revocation):
    the checkpoint commits to the item's head, and the verifier says how many are missing."""
    trace, vkey, _ = trace_world
    report = verify_trace({**trace, "events": trace["events"][:-1]}, vkey)
    assert not report.ok and "1 newer event of this item is not shown" in report.all_failures()
    report = verify_trace({**trace, "events": trace["events"][:-2]}, vkey)
    assert "2 newer events of this item are not shown" in report.all_failures()
    assert not verify_trace({**trace, "events": trace["events"][1:]}, vkey).ok  # the oldest cannot be dropped
    # A head proof made up to fit the cut trace does not lead to the signed item-map root.
    last = trace["events"][-2]
    forged = {**trace["item_head"]}
    forged["terminal"] = {**forged["terminal"], "index": last["index"], "leaf_hash": last["leaf_hash"], "count": 4}
    report = verify_trace({**trace, "events": trace["events"][:-1], "item_head": forged}, vkey)
    assert not report.ok and any("item-map root" in f for f in report.all_failures())


def test_an_unknown_item_is_proved_absent(tmp_path: Path) -> None:
    """The item map also proves absence: the proof for an id the log never saw leads to the
    signed root with no head for that id."""
    from authenticator.ledger.item_map import committed_head, item_key
    from authenticator.trace_verify import map_root, parse_item_head

    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", SIGNER) as led:
        led.append_batch(sample_entries(30, items=7))
        note, _size, proof = led.item_head("itm_never_registered")
        cp = verify_checkpoint(note, SIGNER.verifier_key)
        root = map_root(cp)
        assert root is not None
        assert (
            committed_head(
                item_key("itm_never_registered"), parse_item_head(item_head_proof(proof).model_dump(mode="json")), root
            )
            is None
        )
        present = led.item_head("item-3")[2]
        head = committed_head(
            item_key("item-3"), parse_item_head(item_head_proof(present).model_dump(mode="json")), root
        )
        assert head is not None and head.count == len(led.history("item-3"))


NESTED = b"[" * 50_000 + b"]" * 50_000


def test_deeply_nested_json_is_a_documented_error() -> None:
    """Nesting past the recursion limit is input like any other, not a RecursionError."""
    with pytest.raises(AuthenticatorError):
        parse_envelope(NESTED)
    sig = base64.b64encode(b"\0" * 64).decode()
    deep = b"[" * 20_000 + b"]" * 20_000  # fits the envelope size limit
    env = {"payloadType": "x", "payload": base64.b64encode(deep).decode(), "signatures": [{"sig": sig}]}
    with pytest.raises(ValueError):
        envelope_payload(json.dumps(env).encode())


def test_trace_verify_cli_on_hostile_sources(tmp_path: Path) -> None:
    """`authenticator trace verify` on a trace nested 50,000 deep, or a URL nobody answers:
    one line of error and exit 2, no traceback."""
    nested = tmp_path / "nested.json"
    nested.write_bytes(b'{"events": ' + NESTED + b"}")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for source in (str(nested), f"http://127.0.0.1:{free_port()}/v1/items/x/trace"):
        res = run_cli(["trace", "verify", source, "--key", SIGNER.verifier_key], env)
        assert res.returncode == 2, res.stdout + res.stderr
        assert res.stderr.startswith("error: cannot read the trace") and "Traceback" not in res.stderr
