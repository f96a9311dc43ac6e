"""C2SP tlog-tiles: path encoding and tile bytes (pure), the read API over HTTP on SQLite and
PostgreSQL, and Go's reference client (golang.org/x/mod/sumdb/tlog) reading a 70,000-entry
log over a real socket: the spec's own example size, with full and partial tiles at levels 0
and 1 and a partial level-2 tile."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from api.app import create_app
from authenticator.config import Settings
from authenticator.errors import LedgerError
from authenticator.ledger.cosignature import CosignatureSigner, verify_cosignatures
from authenticator.ledger.log import Ledger
from authenticator.ledger.merkle import hash_children, hash_leaf
from authenticator.ledger.tiles import (
    MAX_BUNDLE_ENTRY_BYTES,
    TILE_WIDTH,
    Tile,
    TilePathError,
    encode_index,
    entry_bundle,
    hash_tile,
    parse_tile_path,
    partial_width,
    split_entry_bundle,
    split_hash_tile,
    tile_content,
    tiles_for_tree,
)
from authenticator.services.witnessing import CosignatureStore
from tests.ledger_samples import REPO_ROOT, sample_entries
from tests.live_server import free_port
from tests.pg_scratch import create_scratch_schema, drop_scratch_schema
from tests.vision_tiny_model import write_tiny_model

FULL = "public, max-age=31536000, immutable"


# --- Pure: paths, widths, bytes ---------------------------------------------------------------


def test_index_encoding_follows_the_spec_examples() -> None:
    # c2sp.org/tlog-tiles: "index 1234067 will be encoded as x001/x234/067"; the rest are the
    # edges of the 3-digit elements, as golang.org/x/mod/sumdb/tlog's Tile.Path encodes them.
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(123456789) == "x123/x456/789"
    assert [encode_index(n) for n in (0, 7, 999, 1000, 1001, 999_999, 1_000_000)] == [
        "000",
        "007",
        "999",
        "x001/000",
        "x001/001",
        "x999/999",
        "x001/x000/000",
    ]
    assert Tile(0, 1234067).path() == "tile/0/x001/x234/067"
    assert Tile(4, 1234067, 1).path() == "tile/4/x001/x234/067.p/1"
    assert Tile(0, 5, 255, entries=True).path() == "tile/entries/005.p/255"
    assert Tile(63, 0, 256).path() == "tile/63/000"


@pytest.mark.parametrize(
    "tile",
    [Tile(0, 0), Tile(0, 0, 1), Tile(1, 1000, 17), Tile(63, 2**55), Tile(0, 1234067, 255, entries=True)],
)
def test_paths_parse_back(tile: Tile) -> None:
    assert parse_tile_path(tile.path()) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/00/000",  # leading zero in L
        "tile/64/000",  # L above 63
        "tile/-1/000",
        "tile/data/000",  # Go's sumdb name for data tiles; tlog-tiles says entries
        "tile/8/0/000",  # Go's sumdb paths carry the height; tlog-tiles paths do not
        "tile/0/1",
        "tile/0/0001",
        "tile/0/x001",  # the last element has no x
        "tile/0/001/002",  # all but the last need one
        "tile/0/x000/001",  # not the shortest encoding
        "tile/0/000.p/256",  # a full tile has no .p
        "tile/0/000.p/0",
        "tile/0/000.p/07",
        "tile/0/000.p/",
        "tile/0/000.p",
        "tile/0/000/",
        "tile/entries/x001",
        "tile/entries/000.p/256",
        "tile/0/x001/x002/x003/x004/x005/x006/x007/008",  # beyond any 64-bit log
        "tile/0/+01",
        "tile/0/ 001",
        "tile/0/٠٠١",  # Arabic-Indic digits: int() takes them, the spec does not
        "tiles/0/000",
        "tile",
        "tile/0",
    ],
)
def test_non_canonical_paths_are_refused(path: str) -> None:
    with pytest.raises(TilePathError):
        parse_tile_path(path)


def test_partial_widths_follow_the_spec_examples() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0
    # tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and one
    # partial level 2 tile of width 1"
    tiles = tiles_for_tree(70_000)
    assert [t for t in tiles if t.level == 0 and not t.partial] == [Tile(0, n) for n in range(273)]
    assert [t for t in tiles if t.level == 0 and t.partial] == [Tile(0, 273, 112)]
    assert [t for t in tiles if t.level >= 1] == [Tile(1, 0), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert [partial_width(level, 70_000) for level in range(4)] == [112, 17, 1, 0]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of width 1"
    assert tiles_for_tree(256) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tiles_for_tree(0) == []
    assert tiles_for_tree(1) == [Tile(0, 0, 1)]
    assert tiles_for_tree(70_000, entries=True)[-2:] == [Tile(0, 272, entries=True), Tile(0, 273, 112, entries=True)]
    assert tiles_for_tree(65_536)[-3:] == [Tile(0, 255), Tile(1, 0), Tile(2, 0, 1)]


def test_entry_bundles_round_trip_with_big_endian_lengths() -> None:
    entries = [b"", b"a", b"\x00" * 300, b"x" * MAX_BUNDLE_ENTRY_BYTES]
    data = entry_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:5] == b"\x00\x01a" and data[5:7] == b"\x01\x2c"
    assert len(data) == 2 * len(entries) + sum(map(len, entries))
    assert split_entry_bundle(data) == entries
    with pytest.raises(LedgerError, match="entry 12 is 65536 bytes"):
        entry_bundle([b"ok", b"y" * (MAX_BUNDLE_ENTRY_BYTES + 1)], first_index=11)
    for cut in (data[:1], data[:4], data[:-1]):
        with pytest.raises(ValueError, match="cut"):
            split_entry_bundle(cut)
    with pytest.raises(ValueError):
        split_entry_bundle(entry_bundle([b"e"] * 256) + b"\x00\x00")
    with pytest.raises(ValueError):
        entry_bundle([])


def test_hash_tiles_are_concatenated_hashes() -> None:
    hashes = [bytes([k]) * 32 for k in range(3)]
    assert hash_tile(hashes) == b"".join(hashes) and split_hash_tile(hash_tile(hashes)) == hashes
    for bad in ([], [b"short"], [b"\x00" * 32] * 257):
        with pytest.raises(ValueError):
            hash_tile(bad)
    with pytest.raises(ValueError):
        split_hash_tile(b"\x00" * 33)


def test_tile_content_reads_one_range_and_needs_every_hash() -> None:
    reads: list[tuple[int, ...]] = []
    stored = {(8, i): bytes([i % 256]) * 32 for i in range(300)}  # 300 level-8 subtrees

    def hashes(level: int, start: int, end: int) -> list[bytes]:
        reads.append((level, start, end))
        return [stored[(level, i)] for i in range(start, end) if (level, i) in stored]

    def entries(start: int, end: int) -> list[bytes]:
        reads.append((start, end))
        return [b"e%d" % i for i in range(start, min(end, 1000))]

    assert tile_content(Tile(1, 1, 44), hashes, entries) == b"".join(stored[(8, i)] for i in range(256, 300))
    assert reads == [(8, 256, 300)]
    assert tile_content(Tile(1, 1, 45), hashes, entries) is None  # one hash beyond the tree
    assert tile_content(Tile(1, 1), hashes, entries) is None
    assert tile_content(Tile(1, 0), hashes, entries) == b"".join(stored[(8, i)] for i in range(256))
    bundle = tile_content(Tile(0, 3, 232, entries=True), hashes, entries)
    assert bundle is not None and split_entry_bundle(bundle)[0] == b"e768"
    assert tile_content(Tile(0, 3, entries=True), hashes, entries) is None
    reads.clear()
    assert tile_content(Tile(63, 2**50), hashes, entries) is None and not reads  # beyond any 64-bit log


# --- The read API in process, on SQLite and PostgreSQL -----------------------------------------


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH of a power-of-two list of leaf hashes, from scratch (not the stored nodes)."""
    while len(leaves) > 1:
        leaves = [hash_children(leaves[k], leaves[k + 1]) for k in range(0, len(leaves), 2)]
    return leaves[0]


@dataclass
class Served:
    client: TestClient
    ledger: Ledger
    leaves: list[bytes]
    entries: list[bytes]
    checkpoints: dict[int, str]


@pytest.fixture(scope="module")
def served(client: TestClient, api_settings: Settings) -> Iterator[Served]:
    """The app with a log of 3,000+ entries appended in batches that end on tile edges."""
    ledger = Ledger.from_settings(api_settings)
    try:
        checkpoints = {}
        for end in (255, 256, 257, 700, 2048, 3001):
            size = ledger.size()
            if end > size:
                ledger.append_batch(sample_entries(end - size, start=size, items=40))
                checkpoints[ledger.size()] = ledger.latest_checkpoint()
        rows = ledger.entries(0, ledger.size())
        yield Served(client, ledger, [r.leaf_hash for r in rows], [r.data for r in rows], checkpoints)
    finally:
        ledger.close()


def test_checkpoint_is_the_signed_note_with_a_short_cache(served: Served) -> None:
    r = served.client.get("/checkpoint")
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=5"
    assert r.text == served.client.get("/v1/log/checkpoint").text  # with the witnesses' cosignatures
    assert r.text.startswith(served.ledger.latest_checkpoint())
    assert int(r.text.split("\n")[1]) == len(served.leaves)


def test_every_tile_of_the_tree_is_served_with_the_right_hashes(served: Served) -> None:
    size = len(served.leaves)
    level1 = [_mth(served.leaves[k : k + TILE_WIDTH]) for k in range(0, size - TILE_WIDTH + 1, TILE_WIDTH)]
    tiles = tiles_for_tree(size)
    assert {t.level for t in tiles} == {0, 1} and any(t.partial for t in tiles if t.level == 1)
    for t in tiles:
        r = served.client.get("/" + t.path())
        assert r.status_code == 200, (t.path(), r.text)
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["cache-control"] == (FULL if not t.partial else "public, max-age=60")
        source = served.leaves if t.level == 0 else level1
        assert split_hash_tile(r.content) == source[t.first_node : t.first_node + t.width], t.path()


def test_partial_tiles_of_older_checkpoints_stay_and_never_change(served: Served) -> None:
    # Every width of the right edge, hence the partial tiles of every older checkpoint too; a
    # partial tile is a prefix of the full one it becomes.
    full = served.client.get("/tile/0/000").content
    assert len(full) == 8192
    for width in (1, 2, 255):
        assert served.client.get(f"/tile/0/000.p/{width}").content == full[: 32 * width]
    for size in served.checkpoints:
        for t in tiles_for_tree(size):
            assert served.client.get("/" + t.path()).status_code == 200, (size, t.path())


def test_entry_bundles_hold_the_entries_and_hash_to_level_0(served: Served) -> None:
    size = len(served.entries)
    for t in tiles_for_tree(size, entries=True):
        r = served.client.get("/" + t.path())  # httpx asks for gzip and undoes it
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert r.headers["vary"] == "Accept-Encoding" and r.headers["content-type"] == "application/octet-stream"
        got = split_entry_bundle(r.content)
        assert got == served.entries[t.first_node : t.first_node + t.width]
        tile = served.client.get("/" + Tile(0, t.index, t.width).path())
        assert [hash_leaf(e) for e in got] == split_hash_tile(tile.content)
    plain = served.client.get("/tile/entries/000", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and split_entry_bundle(plain.content) == served.entries[:256]
    refused = served.client.get("/tile/entries/000", headers={"Accept-Encoding": "gzip;q=0, br"})
    assert "content-encoding" not in refused.headers
    zipped = served.client.get("/tile/entries/000", headers={"Accept-Encoding": "br, gzip;q=0.5"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(zipped.content) // 2  # the wire carried gzip
    partial = served.client.get("/tile/entries/001.p/3", headers={"Accept-Encoding": "identity"})
    assert partial.headers["cache-control"] == "public, max-age=60"
    assert split_entry_bundle(partial.content) == served.entries[256:259]


def test_tiles_beyond_the_tree_and_bad_paths_are_404(served: Served) -> None:
    size = len(served.leaves)
    edge, width = divmod(size, TILE_WIDTH)
    beyond = [
        f"/tile/0/{encode_index(edge)}",  # the edge tile is not full yet
        f"/tile/0/{encode_index(edge)}.p/{width + 1}",  # one hash too wide
        f"/tile/0/{encode_index(edge + 1)}.p/1",
        "/tile/1/000",  # 65,536 leaves needed
        "/tile/2/000.p/1",
        f"/tile/entries/{encode_index(edge)}",
        f"/tile/entries/{encode_index(edge)}.p/{width + 1}",
        "/tile/63/x999/x999/x999/x999/x999/999",
        "/tile/0/x009/x223/x372/x036/x854/x775/807",  # N·256 past 2**63: no SQL overflow
    ]
    malformed = ["/tile/0/1", "/tile/data/000", "/tile/0/000.p/256", "/tile/8/0/000", "/tile/", "/tile/0/000.p/0"]
    for path in beyond + malformed:
        r = served.client.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["cache-control"] == "no-store", path
        assert r.json()["code"] == "not_found"
    assert served.client.get(f"/tile/0/{encode_index(edge)}.p/{width}").status_code == 200


def test_node_range_is_one_ordered_range_read(served: Served) -> None:
    ledger = served.ledger
    assert ledger.node_range(0, 250, 260) == served.leaves[250:260]
    full = len(served.leaves) // 256 * 256
    assert ledger.node_range(8, 0, 256) == [_mth(served.leaves[k : k + 256]) for k in range(0, full, 256)]
    assert ledger.node_range(3, 5, 7) == [_mth(served.leaves[k : k + 8]) for k in (40, 48)]
    assert ledger.node_range(16, 0, 1) == [] and ledger.node_range(0, 5, 5) == []


# --- Go's reference client over a real socket --------------------------------------------------

GO_PACKAGE = REPO_ROOT / "tests" / "go" / "tiles_interop"
GO_XMOD = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog")
INTEROP_SIZE = 70_000
CHECKPOINT_SIZES = (1, 2, 255, 256, 257, 4_000, 65_535, 65_536, 65_537, 69_999)


@pytest.fixture(scope="session")
def go_interop_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None or not GO_XMOD.is_dir():
        pytest.skip(
            "Go or golang.org/x/mod is not installed: scripts/test.sh installs Debian's golang-go and "
            "golang-golang-x-mod-dev (apt-get install -y golang-go golang-golang-x-mod-dev)"
        )
    out = tmp_path_factory.mktemp("go") / "tiles_interop"
    # GOPATH mode against Debian's /usr/share/gocode: no module proxy, no network.
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOFLAGS": "", "GOPROXY": "off"}
    env.setdefault("GOCACHE", str(tmp_path_factory.getbasetemp() / "go-cache"))
    res = subprocess.run(
        [go, "build", "-o", str(out), "."], cwd=GO_PACKAGE, env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    return out


@dataclass
class LiveLog:
    base: str
    verifier_key: str
    checkpoints: dict[int, str]
    size: int


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live_log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLog]:
    """uvicorn on a free port serving a log of 70,000 entries, with checkpoints on tile edges."""
    root = tmp_path_factory.mktemp("tiles")
    write_tiny_model(root / "weights")
    schema = url = None
    if request.param == "postgres":
        schema, url = create_scratch_schema("t_tiles")
    # A witness the log cannot reach (its cosignature is put in the store below): /checkpoint
    # then carries a cosignature line that Go's note.Open, holding only the log key, must skip.
    witness = CosignatureSigner("witness.test/tiles", Ed25519PrivateKey.generate())
    witnesses = f"http://127.0.0.1:9 {witness.verifier_key}"
    settings = Settings(data_dir=root / "data", weights_dir=root / "weights", database_url=url, witnesses=witnesses)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        with Ledger.from_settings(settings) as ledger:
            checkpoints = {}
            for end in (*CHECKPOINT_SIZES, INTEROP_SIZE):
                while (size := ledger.size()) < end:
                    ledger.append_batch(sample_entries(min(end - size, 5_000), start=size, items=997))
                checkpoints[end] = ledger.latest_checkpoint()
                assert ledger.size() == end  # the server appended nothing meanwhile
            note = checkpoints[INTEROP_SIZE]
            line = witness.cosign(note.split("\n\n", 1)[0] + "\n")
            [cosignature] = verify_cosignatures(note + line, [witness.verifier])
            CosignatureStore(app.state.ctx.engine).add(INTEROP_SIZE, cosignature)
            assert httpx.get(f"http://127.0.0.1:{port}/checkpoint").text == note + line
            yield LiveLog(f"http://127.0.0.1:{port}", ledger.verifier_key, checkpoints, ledger.size())
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        if schema is not None:
            drop_scratch_schema(schema)


def test_go_tlog_reads_our_tiles_and_checks_proofs(live_log: LiveLog, go_interop_binary: Path, tmp_path: Path) -> None:
    """golang.org/x/mod/sumdb/tlog's TileHashReader reads our hash tiles and authenticates them
    against the checkpoint's root (note.Open checks the log's signature and skips a witness's
    cosignature line); every entry of every bundle hashes to its leaf; record and tree proofs
    computed from tiles check against the roots and equal our /v1/log proofs; tlog's paths are
    ours."""
    size = live_log.size
    assert size == INTEROP_SIZE
    records = sorted({0, 1, 255, 256, 257, 65_535, 65_536, 65_537, size - 2, size - 1, *range(3, size, 997)})
    path_cases = [
        [0, 0, 256],
        [0, 1234067, 256],
        [4, 1234067, 1],
        [1, 999, 255],
        [63, 10**15, 17],
        [-1, 273, 112],
        [-1, 1000, 256],
    ]
    cases = tmp_path / "cases.json"
    old = [live_log.checkpoints[s] for s in CHECKPOINT_SIZES]
    cases.write_text(json.dumps({"old_checkpoints": old, "records": records, "path_cases": path_cases}))
    res = subprocess.run(
        [str(go_interop_binary), "-base", live_log.base, "-key", live_log.verifier_key, "-config", str(cases)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-2000:]}"
    report = json.loads(res.stdout)
    assert report["failures"] == []
    assert report["size"] == size and report["leaves_checked"] == size
    root = base64.b64decode(report["root"])
    assert live_log.checkpoints[size].split("\n")[2] == base64.b64encode(root).decode()
    assert report["records_checked"] == len(records) and report["trees_checked"] == len(CHECKPOINT_SIZES)
    assert len(report["rejected_bad"]) == 4, report["rejected_bad"]
    # tlog.Tile.Path, less its height element ("data" read as "entries"), is our path.
    for level, index, width in path_cases:
        ours = Tile(max(level, 0), index, width, entries=level < 0).path()
        assert report["paths"][f"{level}/{index}/{width}"] == ours
    # tlog.NewTiles(8, 0, size): every full tile and every partial width of the right edge; the
    # widest partial per level is exactly what our tiles_for_tree publishes.
    new_tiles = [parse_tile_path(p) for p in report["new_tiles"]]
    widest = {(t.level, t.index): t for t in new_tiles}
    assert sorted(widest.values(), key=lambda t: (t.level, t.index)) == tiles_for_tree(size)
    assert sum(t.partial for t in new_tiles) == 112 + 17 + 1
    assert report["tiles_fetched"] >= len(new_tiles)
