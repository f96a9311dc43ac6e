"""C2SP tlog-checkpoints: strict body parsing, signing, and the log key file on disk."""

from __future__ import annotations

import base64
import multiprocessing
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from authenticator.errors import CheckpointError, ConfigurationError
from authenticator.ledger.checkpoint import Checkpoint, CheckpointSigner, verify_checkpoint
from authenticator.ledger.note import NoteVerifier, open_note

ORIGIN = "example.com/log"
ROOT = bytes([0xFB, 0xFF]) * 15 + b"\x00\x01"
ROOT_B64 = base64.b64encode(ROOT).decode()  # has "+" and "/": the URL-safe alphabet differs
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# The last character before "=" carries 2 unused bits; setting one gives a second encoding.
ROOT_B64_SPARE_BIT = ROOT_B64[:-2] + _ALPHABET[_ALPHABET.index(ROOT_B64[-2]) ^ 1] + "="


def test_body_format_and_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 1234, ROOT)
    assert cp.body() == f"{ORIGIN}\n1234\n{ROOT_B64}\n"
    assert Checkpoint.parse(cp.body()) == cp
    ext = Checkpoint(ORIGIN, 0, ROOT, ("Timestamp: 1700000000", "— not a signature, just text"))
    assert ext.body().endswith("\nTimestamp: 1700000000\n— not a signature, just text\n")
    assert Checkpoint.parse(ext.body()) == ext
    big = Checkpoint(ORIGIN, 2**64 - 1, ROOT)
    assert Checkpoint.parse(big.body()).size == 2**64 - 1


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (f"{ORIGIN}\n012\n{ROOT_B64}\n", "leading zero"),
        (f"{ORIGIN}\n00\n{ROOT_B64}\n", "zero with a leading zero"),
        (f"{ORIGIN}\n+12\n{ROOT_B64}\n", "sign"),
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "negative"),
        (f"{ORIGIN}\n 12\n{ROOT_B64}\n", "space"),
        (f"{ORIGIN}\n1_000\n{ROOT_B64}\n", "underscore"),
        (f"{ORIGIN}\n١٢\n{ROOT_B64}\n", "non-ASCII digits"),
        (f"{ORIGIN}\n0x10\n{ROOT_B64}\n", "hex"),
        (f"{ORIGIN}\n18446744073709551616\n{ROOT_B64}\n", "2**64"),
        (f"{ORIGIN}\n\n{ROOT_B64}\n", "empty size"),
        (f"\n12\n{ROOT_B64}\n", "empty origin"),
        (f"{ORIGIN}\n12\n{base64.b64encode(bytes(31)).decode()}\n", "31-byte hash"),
        (f"{ORIGIN}\n12\n{base64.b64encode(bytes(33)).decode()}\n", "33-byte hash"),
        (f"{ORIGIN}\n12\n{ROOT_B64[:-1]}\n", "missing padding"),
        (f"{ORIGIN}\n12\n{ROOT_B64.replace('+', '-').replace('/', '_')}\n", "url-safe alphabet"),
        (f"{ORIGIN}\n12\n{ROOT_B64_SPARE_BIT}\n", "non-zero spare bits (non-canonical base64)"),
        (f"{ORIGIN}\n12\n{ROOT_B64}", "missing final newline"),
        (f"{ORIGIN}\n12\n", "missing root"),
        (f"{ORIGIN}\n12\n{ROOT_B64}\n\next\n", "blank extension line"),
        (f"{ORIGIN}\r\n12\n{ROOT_B64}\n", "CR in origin"),
    ],
)
def test_strict_parsing(body: str, why: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(body)


def test_non_canonical_root_really_decodes_to_the_same_size() -> None:
    # The spare-bit case above is only meaningful if a lenient decoder would accept it.
    assert ROOT_B64_SPARE_BIT != ROOT_B64
    assert base64.b64decode(ROOT_B64_SPARE_BIT) == ROOT


@pytest.mark.parametrize(
    "args",
    [("", 1, ROOT), ("a\nb", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, 2**64, ROOT), (ORIGIN, 1, bytes(31))],
)
def test_constructor_refuses_invalid(args: tuple[str, int, bytes]) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(*args)


def test_sign_and_verify(tmp_path: Path) -> None:
    signer = CheckpointSigner.load_or_create(tmp_path / "log.key", ORIGIN)
    cp = Checkpoint(ORIGIN, 7, ROOT)
    note = signer.sign(cp)
    assert note.startswith(cp.body() + "\n— example.com/log ")
    assert verify_checkpoint(note, signer.verifier_key) == cp
    assert verify_checkpoint(note, signer.verifier_key, origin=ORIGIN) == cp
    assert open_note(note, [NoteVerifier.from_verifier_key(signer.verifier_key)])[1] == [ORIGIN]
    assert signer.verifier_key.startswith(f"{ORIGIN}+{signer.verifier.key_hash.hex()}+")


def test_wrong_origin_rejected(tmp_path: Path) -> None:
    signer = CheckpointSigner.load_or_create(tmp_path / "log.key", ORIGIN)
    note = signer.sign(Checkpoint(ORIGIN, 7, ROOT))
    with pytest.raises(CheckpointError, match="origin"):
        verify_checkpoint(note, signer.verifier_key, origin="example.com/other")
    with pytest.raises(CheckpointError, match="origin"):
        signer.sign(Checkpoint("example.com/other", 7, ROOT))


def test_other_key_and_tampered_note_rejected(tmp_path: Path) -> None:
    signer = CheckpointSigner.load_or_create(tmp_path / "a.key", ORIGIN)
    other = CheckpointSigner.load_or_create(tmp_path / "b.key", ORIGIN)
    note = signer.sign(Checkpoint(ORIGIN, 7, ROOT))
    with pytest.raises(CheckpointError, match="no verified signature"):
        verify_checkpoint(note, other.verifier_key)
    with pytest.raises(CheckpointError):
        verify_checkpoint(note.replace("\n7\n", "\n8\n"), signer.verifier_key)
    # A co-signature by an unknown key does not disturb verification.
    cosigned = note + other.sign(Checkpoint(ORIGIN, 7, ROOT)).split("\n\n")[1]
    assert verify_checkpoint(cosigned, signer.verifier_key).size == 7
    # But a failing signature from the expected key rejects the note, even next to a good one.
    body, good_line = note.split("\n\n")
    bad_line = signer.sign(Checkpoint(ORIGIN, 8, ROOT)).split("\n\n")[1]
    for lines in (bad_line, bad_line + good_line):
        with pytest.raises(CheckpointError, match="does not verify"):
            verify_checkpoint(f"{body}\n\n{lines}", signer.verifier_key)
    with pytest.raises(CheckpointError, match="more than once"):
        verify_checkpoint(note + bad_line, signer.verifier_key)


def test_signed_body_that_is_not_a_checkpoint_rejected(tmp_path: Path) -> None:
    signer = CheckpointSigner.load_or_create(tmp_path / "log.key", ORIGIN)
    note = signer._signer.sign(f"{ORIGIN}\n07\n{ROOT_B64}\n")
    with pytest.raises(CheckpointError, match="leading zeros"):
        verify_checkpoint(note, signer.verifier_key)


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "log.key"
    first = CheckpointSigner.load_or_create(path, ORIGIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in path.parent.iterdir()] == ["log.key"]  # no temporary file left
    second = CheckpointSigner.load_or_create(path, ORIGIN)
    assert second.verifier_key == first.verifier_key
    # Same key under another origin: another key name, so another verifier key.
    renamed = CheckpointSigner.load_or_create(path, "example.com/renamed")
    assert renamed.verifier.public_key_raw == first.verifier.public_key_raw
    assert renamed.verifier_key != first.verifier_key


def test_key_file_created_0600_despite_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        CheckpointSigner.load_or_create(tmp_path / "log.key", ORIGIN)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "log.key").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o601])
def test_loose_permissions_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "log.key"
    CheckpointSigner.load_or_create(path, ORIGIN)
    path.chmod(mode)
    with pytest.raises(ConfigurationError) as info:
        CheckpointSigner.load_or_create(path, ORIGIN)
    assert str(path) in info.value.message
    assert f"chmod 600 {path}" in info.value.message


def test_corrupt_key_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    os.close(fd)
    with pytest.raises(ConfigurationError, match="corrupt"):
        CheckpointSigner.load_or_create(path, ORIGIN)
    path.write_bytes(b"")
    with pytest.raises(ConfigurationError, match=str(path)):
        CheckpointSigner.load_or_create(path, ORIGIN)


def test_non_ed25519_key_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    pem = generate_private_key(SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, pem)
    os.close(fd)
    with pytest.raises(ConfigurationError, match="Ed25519"):
        CheckpointSigner.load_or_create(path, ORIGIN)


def test_unreadable_key_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    CheckpointSigner.load_or_create(path, ORIGIN)
    path.chmod(0o000)
    if os.geteuid() != 0:
        with pytest.raises(ConfigurationError, match="cannot read"):
            CheckpointSigner.load_or_create(path, ORIGIN)
        return
    # Root reads any file through CAP_DAC_OVERRIDE: check in a child process without it.
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root's file capabilities"
    code = (
        "import sys; from pathlib import Path\n"
        "from authenticator.errors import ConfigurationError\n"
        "from authenticator.ledger.checkpoint import CheckpointSigner\n"
        "try:\n"
        f"    CheckpointSigner.load_or_create(Path({str(path)!r}), {ORIGIN!r})\n"
        "except ConfigurationError as exc:\n"
        "    print(exc); sys.exit(0 if 'cannot read' in str(exc) else 3)\n"
        "sys.exit(4)\n"
    )
    result = subprocess.run(
        [setpriv, "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(Path(__file__).resolve().parents[2]),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_key_path_that_is_a_directory_refused(tmp_path: Path) -> None:
    (tmp_path / "log.key").mkdir(mode=0o700)
    with pytest.raises(ConfigurationError):
        CheckpointSigner.load_or_create(tmp_path / "log.key", ORIGIN)


def test_origin_must_be_a_key_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        CheckpointSigner.load_or_create(tmp_path / "log.key", "has space")
    assert not (tmp_path / "log.key").exists()


def _load_vkey(path: str, queue: multiprocessing.Queue[str]) -> None:
    queue.put(CheckpointSigner.load_or_create(Path(path), ORIGIN).verifier_key)


def test_concurrent_first_use_yields_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_load_vkey, args=(str(tmp_path / "log.key"), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    keys = {queue.get(timeout=30) for _ in procs}
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(keys) == 1
    assert keys == {CheckpointSigner.load_or_create(tmp_path / "log.key", ORIGIN).verifier_key}


def test_symlinked_key_follows_the_target_and_its_mode(tmp_path: Path) -> None:
    real = tmp_path / "secret" / "log.key"
    signer = CheckpointSigner.load_or_create(real, ORIGIN)
    link = tmp_path / "log.key"
    link.symlink_to(real)
    assert CheckpointSigner.load_or_create(link, ORIGIN).verifier_key == signer.verifier_key
    real.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        CheckpointSigner.load_or_create(link, ORIGIN)


def test_dangling_symlink_is_not_written_through(tmp_path: Path) -> None:
    link = tmp_path / "log.key"
    link.symlink_to(tmp_path / "elsewhere.key")
    with pytest.raises(ConfigurationError, match="cannot read"):
        CheckpointSigner.load_or_create(link, ORIGIN)
    assert not (tmp_path / "elsewhere.key").exists()


def test_key_directory_that_cannot_be_made_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="cannot create"):
        CheckpointSigner.load_or_create(blocker / "keys" / "log.key", ORIGIN)
