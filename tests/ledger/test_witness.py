"""``authenticator witness serve``: C2SP tlog-witness over real HTTP, against real logs.

One witness process (the real command, its own key and SQLite state in its own folder) serves
the module; each test uses a log of its own origin, so tests do not share witness state. The
logs are real ledgers (SQLite) signed with real keys; a forked log is two ledgers with one key
that took different entries. Status codes are the spec's: 400 malformed, 403 no trusted
signature, 404 unknown origin, 409 stale ``old`` (with the witness's size as
``text/x.tlog.size``) or a second root for a size, 413 too large, 422 a bad consistency proof.
"""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authenticator.errors import ProofError, WitnessRefusal
from authenticator.ledger.checkpoint import CheckpointSigner, verify_checkpoint
from authenticator.ledger.cosignature import verify_cosignatures
from authenticator.ledger.log import Ledger
from authenticator.ledger.merkle import verify_consistency
from authenticator.ledger.note import NoteSigner
from authenticator.witness.protocol import SIZE_CONTENT_TYPE, format_add_checkpoint
from authenticator.witness.store import WitnessStore
from authenticator.witness.witness import open_witness
from tests.ledger_samples import sample_entry
from tests.live_server import CLI
from tests.witness_support import WitnessServer, running_witness, witness_env

WITNESS_NAME = "witness.test/w1"
ORIGINS = ["grow", "fork", "shrink", "proof", "race", "reject", "client"]


@pytest.fixture(scope="module")
def signers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CheckpointSigner]:
    folder = tmp_path_factory.mktemp("log-keys")
    return {o: CheckpointSigner.load_or_create(folder / f"{o}.key", f"log.test/{o}") for o in ORIGINS}


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory, signers: dict[str, CheckpointSigner]) -> Iterator[WitnessServer]:
    data_dir = tmp_path_factory.mktemp("witness") / "state"
    with running_witness(data_dir, WITNESS_NAME, [s.verifier_key for s in signers.values()]) as server:
        yield server


def _ledger(tmp_path: Path, signer: CheckpointSigner, name: str = "log") -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / f'{name}.db'}", signer)


def _grow(ledger: Ledger, n: int, tag: str = "a") -> str:
    for i in range(n):
        ledger.append(sample_entry(i, f"{tag}-item-{i % 3}"))
    return ledger.latest_checkpoint()


def _size(note: str) -> int:
    return int(note.split("\n")[1])


def _root(note: str) -> bytes:
    return base64.b64decode(note.split("\n")[2])


def _cosigned(server: WitnessServer, note: str, response: httpx.Response) -> int:
    """Check a 200 answer: one valid cosignature line by the witness's key; its timestamp."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("— ") and response.text.endswith("\n")
    [cosig] = verify_cosignatures(note + response.text, [server.verifier])
    return cosig.timestamp


# --- the witness's own key and state --------------------------------------------------------------


def test_the_witness_has_its_own_key_and_state(witness: WitnessServer, signers: dict[str, CheckpointSigner]) -> None:
    key_file, db_file = witness.data_dir / "witness.key", witness.data_dir / "witness.db"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(witness.data_dir.stat().st_mode) == 0o700
    assert witness.vkey.startswith(f"{WITNESS_NAME}+")
    assert base64.b64decode(witness.vkey.split("+", 2)[2])[0] == 0x04
    about = httpx.get(f"{witness.base}/").text
    assert witness.vkey in about
    assert all(s.verifier_key in about for s in signers.values())
    assert httpx.get(f"{witness.base}/add-checkpoint").status_code == 405
    assert httpx.get(f"{witness.base}/nothing").status_code == 404


# --- cosigning a growing log ----------------------------------------------------------------------


def test_cosigns_a_growing_log(witness: WitnessServer, signers: dict[str, CheckpointSigner], tmp_path: Path) -> None:
    with _ledger(tmp_path, signers["grow"]) as ledger:
        first = ledger.latest_checkpoint()
        t0 = _cosigned(witness, first, witness.add(0, [], first))
        old = _size(first)
        for rounds in (1, 3, 7, 20):
            note = _grow(ledger, rounds)
            size = _size(note)
            proof = ledger.consistency_proof(old, size) if old else []
            assert _cosigned(witness, note, witness.add(old, proof, note)) >= t0
            old = size
        # The same checkpoint again: cosigned again (the witness's view has not changed).
        assert witness.add(old, [], note).status_code == 200
        # The cosigned note still opens with the log key alone and parses as a checkpoint.
        line = witness.add(old, [], note).text
        assert verify_checkpoint(note + line, signers["grow"].verifier_key).size == old
    latest = WitnessStore(witness.data_dir / "witness.db").latest("log.test/grow")
    assert latest is not None and (latest.size, latest.root, latest.note) == (old, _root(note), note)


# --- forks and rollbacks --------------------------------------------------------------------------


def test_refuses_a_fork_and_a_client_with_both_checkpoints_sees_it(
    witness: WitnessServer, signers: dict[str, CheckpointSigner], tmp_path: Path
) -> None:
    signer = signers["fork"]
    with _ledger(tmp_path, signer, "a") as a, _ledger(tmp_path, signer, "b") as b:
        base = a.latest_checkpoint()
        assert b.latest_checkpoint() == base  # one log, so far
        note_a = _grow(a, 4, "a")
        note_b = _grow(b, 4, "b")  # the same key signs another tree of the same size: a split view
        assert _size(note_a) == _size(note_b) and _root(note_a) != _root(note_b)
        assert _cosigned(witness, note_a, witness.add(0, [], note_a))
        # Branch b, same size: 409, never cosigned.
        refused = witness.add(_size(note_a), [], note_b)
        assert refused.status_code == 409 and "forked" in refused.text
        # Branch b grows on: its consistency proof leads from b's tree, not the one cosigned: 422.
        note_b2 = _grow(b, 3, "b")
        proof_b = b.consistency_proof(_size(note_b), _size(note_b2))
        assert witness.add(_size(note_a), proof_b, note_b2).status_code == 422
        # Branch a grows on and is still cosigned: the witness's view is branch a.
        note_a2 = _grow(a, 3, "a")
        proof_a = a.consistency_proof(_size(note_a), _size(note_a2))
        _cosigned(witness, note_a2, witness.add(_size(note_a), proof_a, note_a2))

        # A client holding one checkpoint of each branch detects the fork, with no witness at all:
        # both are validly signed, yet one size has two roots, and no proof links them.
        for note in (note_a, note_b, note_a2, note_b2):
            verify_checkpoint(note, signer.verifier_key)
        with pytest.raises(ProofError, match="different roots"):
            verify_consistency(_size(note_a), _size(note_b), [], _root(note_a), _root(note_b))
        with pytest.raises(ProofError):
            verify_consistency(_size(note_a), _size(note_b2), proof_b, _root(note_a), _root(note_b2))
        with pytest.raises(ProofError):
            verify_consistency(_size(note_b), _size(note_a2), proof_a, _root(note_b), _root(note_a2))
    # The witness kept the validly signed refused requests as evidence of the fork.
    kept = WitnessStore(witness.data_dir / "witness.db").refusals("log.test/fork")
    assert [status for status, _, _ in kept] == [409, 422]
    assert note_b.encode() in kept[0][2] and note_b2.encode() in kept[1][2]


def test_refuses_a_smaller_tree_after_a_larger(
    witness: WitnessServer, signers: dict[str, CheckpointSigner], tmp_path: Path
) -> None:
    with _ledger(tmp_path, signers["shrink"]) as ledger:
        small = _grow(ledger, 3)
        large = _grow(ledger, 5)
        _cosigned(witness, large, witness.add(0, [], large))
        # The smaller tree (a rolled-back log), whatever old size is claimed:
        for old in (0, _size(small)):
            r = witness.add(old, [], small)
            assert r.status_code == 409
            assert r.headers["content-type"] == SIZE_CONTENT_TYPE
            assert r.text == f"{_size(large)}\n"
        assert witness.add(_size(large), [], small).status_code == 400  # old > checkpoint size
        assert witness.add(0, [], large).text == f"{_size(large)}\n"  # a client learns the size with old 0


def test_a_bad_consistency_proof_is_refused_and_changes_nothing(
    witness: WitnessServer, signers: dict[str, CheckpointSigner], tmp_path: Path
) -> None:
    with _ledger(tmp_path, signers["proof"]) as ledger:
        first = _grow(ledger, 5)
        _cosigned(witness, first, witness.add(0, [], first))
        second = _grow(ledger, 6)
        proof = ledger.consistency_proof(_size(first), _size(second))
        flipped = [*proof[:-1], bytes([proof[-1][0] ^ 1]) + proof[-1][1:]]
        assert witness.add(_size(first), flipped, second).status_code == 422
        assert witness.add(_size(first), proof[:-1], second).status_code == 422  # too short
        assert witness.add(_size(first), [*proof, proof[0]], second).status_code == 422  # too long
        _cosigned(witness, second, witness.add(_size(first), proof, second))


def test_refusals_for_unknown_logs_bad_signatures_and_malformed_requests(
    witness: WitnessServer, signers: dict[str, CheckpointSigner], tmp_path: Path
) -> None:
    signer = signers["reject"]
    with _ledger(tmp_path, signer) as ledger:
        note = _grow(ledger, 2)
    text = note.split("\n\n")[0] + "\n"
    # Unknown origin: 404.
    stranger = NoteSigner("log.test/stranger", Ed25519PrivateKey.generate())
    assert witness.add(0, [], stranger.sign(text.replace("log.test/reject", "log.test/stranger", 1))).status_code == 404
    # Known origin, signed by another key of that name: 403 (its line is ignored, none verifies).
    impostor = NoteSigner("log.test/reject", Ed25519PrivateKey.generate())
    assert witness.add(0, [], impostor.sign(text)).status_code == 403
    # Known key, altered text: 403.
    assert witness.add(0, [], note.replace("\n2\n", "\n3\n", 1)).status_code == 403
    # Malformed: 400.
    for body in (
        b"old 01\n\n" + note.encode(),
        b"old -1\n\n" + note.encode(),
        b"new 0\n\n" + note.encode(),
        b"old 0\n" + note.encode(),  # no empty line: the note's own blank line is taken for it
        b"old 0\nnot-base64\n\n" + note.encode(),
        format_add_checkpoint(0, [bytes(32)], note),  # a proof with old 0
        ("old 1\n" + ("A" * 43 + "=\n") * 64 + "\n" + note).encode(),  # 64 proof lines
        b"old 0\n\n" + b"\xff" + note.encode(),
        b"old 0\n\nnot a checkpoint\n\n\xe2\x80\x94 x AAAA\n",
    ):
        assert witness.add_raw(body).status_code == 400, body[:40]
    # Too large: 413, before reading it all.
    assert witness.add_raw(b"old 0\n\n" + b"x" * 1_200_000).status_code == 413
    # None of it was recorded.
    assert WitnessStore(witness.data_dir / "witness.db").latest("log.test/reject") is None


def test_concurrent_requests_never_roll_the_state_back(
    witness: WitnessServer, signers: dict[str, CheckpointSigner], tmp_path: Path
) -> None:
    """The spec's race: requests from one old size to several new sizes at once. Exactly one
    wins; the rest get 409 with the winner's size; the state is the winner's."""
    with _ledger(tmp_path, signers["race"]) as ledger:
        base = _grow(ledger, 2)
        _cosigned(witness, base, witness.add(0, [], base))
        notes = [_grow(ledger, 1) for _ in range(8)]
        proofs = [ledger.consistency_proof(_size(base), _size(n)) for n in notes]
    answers: list[httpx.Response | None] = [None] * len(notes)
    start = threading.Barrier(len(notes))

    def post(k: int) -> None:
        start.wait()
        answers[k] = witness.add(_size(base), proofs[k], notes[k])

    threads = [threading.Thread(target=post, args=(k,)) for k in range(len(notes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [k for k, r in enumerate(answers) if r is not None and r.status_code == 200]
    assert len(won) == 1
    size = _size(notes[won[0]])
    for k, r in enumerate(answers):
        if k != won[0]:
            assert r is not None and r.status_code == 409 and r.text == f"{size}\n"
    latest = WitnessStore(witness.data_dir / "witness.db").latest("log.test/race")
    assert latest is not None and latest.size == size


# --- the state outlives the process ---------------------------------------------------------------


def test_a_restarted_witness_remembers_what_it_cosigned(tmp_path: Path, signers: dict[str, CheckpointSigner]) -> None:
    signer = signers["client"]
    with _ledger(tmp_path, signer) as ledger:
        small = _grow(ledger, 2)
        large = _grow(ledger, 4)
    first = open_witness(tmp_path / "w", "witness.test/w2", [signer.verifier_key])
    first.add_checkpoint(format_add_checkpoint(0, [], large))
    shutil.copytree(tmp_path / "w", tmp_path / "w-copy")  # what survives: the folder
    again = open_witness(tmp_path / "w-copy", "witness.test/w2", [signer.verifier_key])
    assert again.signer.verifier_key == first.signer.verifier_key
    with pytest.raises(WitnessRefusal) as refused:
        again.add_checkpoint(format_add_checkpoint(0, [], small))
    assert refused.value.http_status == 409 and refused.value.details["size"] == _size(large)


def test_witness_serve_refuses_a_bad_log_key_in_one_line(tmp_path: Path) -> None:
    res = subprocess.run(
        [CLI, "witness", "serve", "--name", "w.test/x", "--data-dir", str(tmp_path), "--log", "nope+00+AA=="],
        env=witness_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert res.stderr.startswith("error: log key 'nope+00+AA=='") and "Traceback" not in res.stderr
