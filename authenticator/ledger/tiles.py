"""C2SP tlog-tiles: tile coordinates, their paths and their bytes. Pure, no I/O.

The log is readable as c2sp.org/tlog-tiles: a *hash tile* ``(L, N)`` lists the hashes of the
perfect subtrees of level ``8·L`` (``2**(8·L)`` leaves each) numbered ``N·256`` to
``N·256 + 255``: at level 0 the leaf hashes, above that what ``log_nodes`` stores at level
``8·L``. A tile of the tree's right edge is *partial*: it lists the first ``W < 256`` of them
(``.p/W`` in its path). An *entry bundle* ``N`` holds entries ``N·256 …`` themselves, each as a
big-endian uint16 length and the entry bytes. Every tile's bytes depend only on its
coordinates ``(L, N, W)``, never on the tree size that asked for it, so any tile the log can
fill may be cached forever; a tile it cannot fill (yet) does not exist.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from authenticator.errors import LedgerError

TILE_HEIGHT = 8
"""Tree levels per tile (fixed by the spec)."""
TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile, entries in a full bundle."""
HASH_SIZE = 32
MAX_TILE_LEVEL = 63
MAX_BUNDLE_ENTRY_BYTES = 0xFFFF
"""An entry bundle prefixes each entry with a uint16 length: bigger entries cannot be bundled."""
MAX_LEAF_INDEX = 2**63 - 1
"""Leaf indexes are signed 64-bit integers in both databases: a tile starting beyond is empty."""

_MAX_INDEX_ELEMENTS = 7
"""``N`` below 10**21 > 2**63 / 256: more path elements can only name an empty tile."""
_ELEMENT = re.compile(r"x?[0-9]{3}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class TilePathError(ValueError):
    """A path that is not a C2SP tlog-tiles tile path (answered 404, like a missing file)."""


@dataclass(frozen=True, slots=True)
class Tile:
    """A hash tile ``(level, index)`` of ``width`` hashes, or entry bundle ``index`` when ``entries``."""

    level: int
    index: int
    width: int = TILE_WIDTH
    entries: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.level <= MAX_TILE_LEVEL or (self.entries and self.level):
            raise ValueError(f"bad tile level {self.level}")
        if self.index < 0:
            raise ValueError(f"bad tile index {self.index}")
        if not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"bad tile width {self.width}")

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def node_level(self) -> int:
        """The tree level of the subtrees whose hashes this tile lists (0 for entry bundles)."""
        return TILE_HEIGHT * self.level

    @property
    def first_node(self) -> int:
        """Index (at :attr:`node_level`) of the tile's first hash or the bundle's first entry."""
        return self.index * TILE_WIDTH

    @property
    def first_leaf(self) -> int:
        """The tile's *start index* in the spec's words: its first leaf."""
        return self.first_node << self.node_level

    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``, relative to the log's prefix."""
        level = "entries" if self.entries else str(self.level)
        suffix = f".p/{self.width}" if self.partial else ""
        return f"tile/{level}/{encode_index(self.index)}{suffix}"


def encode_index(n: int) -> str:
    """``N`` as zero-padded 3-digit path elements, all but the last prefixed with ``x``:
    1234067 is ``x001/x234/067``."""
    if n < 0:
        raise ValueError(f"bad tile index {n}")
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def parse_tile_path(path: str) -> Tile:
    """The tile named by ``path`` (``tile/…``, no leading slash). Only the canonical encoding is
    accepted, as Go's ``tlog.ParseTilePath`` does: ``000.p/256``, ``x000/001``, ``01`` or ``.p/0``
    are no tile. Raises :class:`TilePathError`."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise TilePathError(f"not a tile path: {path!r}")
    entries = parts[1] == "entries"
    if not entries and (_DECIMAL.fullmatch(parts[1]) is None or int(parts[1]) > MAX_TILE_LEVEL):
        raise TilePathError(f"bad tile level in {path!r}")
    rest = parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if _DECIMAL.fullmatch(rest[-1]) is None or not 1 <= int(rest[-1]) < TILE_WIDTH:
            raise TilePathError(f"bad partial tile width in {path!r}")
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][: -len(".p")]]
    if not 1 <= len(rest) <= _MAX_INDEX_ELEMENTS or any(_ELEMENT.fullmatch(e) is None for e in rest):
        raise TilePathError(f"bad tile index in {path!r}")
    index = 0
    for element in rest:
        index = index * 1000 + int(element.removeprefix("x"))
    tile = Tile(0 if entries else int(parts[1]), index, width, entries)
    if tile.path() != path:
        raise TilePathError(f"not the canonical tile path {tile.path()!r}: {path!r}")
    return tile


def partial_width(level: int, size: int) -> int:
    """Width of the partial tile at ``level`` of a tree of ``size`` leaves (0: there is none):
    ``floor(size / 256**level) mod 256``."""
    return (size >> (TILE_HEIGHT * level)) % TILE_WIDTH


def tiles_for_tree(size: int, *, entries: bool = False) -> list[Tile]:
    """The tiles (or entry bundles) that represent a tree of ``size`` leaves: every full tile,
    then the partial one, level by level. 70,000 leaves are 273 full level-0 tiles, one of
    width 112, one full level-1 tile, one of width 17 and one level-2 tile of width 1."""
    out: list[Tile] = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        nodes = size >> (TILE_HEIGHT * level)
        full, width = divmod(nodes, TILE_WIDTH)
        out += [Tile(level, n, TILE_WIDTH, entries) for n in range(full)]
        if width:
            out.append(Tile(level, full, width, entries))
        if entries:
            break
        level += 1
    return out


def hash_tile(hashes: Sequence[bytes]) -> bytes:
    """A hash tile's bytes: its hashes, concatenated."""
    if not 1 <= len(hashes) <= TILE_WIDTH or any(len(h) != HASH_SIZE for h in hashes):
        raise ValueError("a hash tile is 1 to 256 hashes of 32 bytes")
    return b"".join(hashes)


def split_hash_tile(data: bytes) -> list[bytes]:
    """The hashes of a hash tile's bytes."""
    if not data or len(data) % HASH_SIZE or len(data) > TILE_WIDTH * HASH_SIZE:
        raise ValueError(f"a hash tile of {len(data)} bytes")
    return [data[k : k + HASH_SIZE] for k in range(0, len(data), HASH_SIZE)]


def entry_bundle(entries: Sequence[bytes], first_index: int = 0) -> bytes:
    """An entry bundle's bytes: each entry as a big-endian uint16 length and its bytes. Raises
    :class:`~authenticator.errors.LedgerError` for an entry of more than 65,535 bytes (the
    format cannot hold it; ``first_index`` names it in the message)."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise ValueError("an entry bundle is 1 to 256 entries")
    out = bytearray()
    for k, data in enumerate(entries):
        if len(data) > MAX_BUNDLE_ENTRY_BYTES:
            raise LedgerError(
                f"entry {first_index + k} is {len(data)} bytes; a tlog-tiles entry bundle holds entries "
                f"of at most {MAX_BUNDLE_ENTRY_BYTES} bytes",
                index=first_index + k,
            )
        out += struct.pack(">H", len(data))
        out += data
    return bytes(out)


def split_entry_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry bundle's bytes; :class:`ValueError` if it is cut or overlong."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError(f"entry bundle cut inside the length of entry {len(out)}")
        (length,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + length > len(data):
            raise ValueError(f"entry bundle cut inside entry {len(out)}")
        out.append(data[pos : pos + length])
        pos += length
        if len(out) > TILE_WIDTH:
            raise ValueError("an entry bundle holds at most 256 entries")
    return out


HashRange = Callable[[int, int, int], Sequence[bytes]]
"""``(level, start, end)`` → the stored hashes of subtrees ``(level, start) … (level, end - 1)``,
fewer where the tree ends (``Ledger.node_range``)."""
EntryRange = Callable[[int, int], Sequence[bytes]]
"""``(start, end)`` → the bytes of entries ``start … end - 1``, fewer where the log ends."""


def tile_content(tile: Tile, hashes: HashRange, entries: EntryRange) -> bytes | None:
    """The bytes of ``tile`` read with one range read, or ``None`` when the log does not (yet)
    have all of it: a tile beyond the tree, or wider than the tree's edge."""
    if tile.first_leaf > MAX_LEAF_INDEX:
        return None
    start, end = tile.first_node, tile.first_node + tile.width
    if tile.entries:
        rows = entries(start, end)
        return entry_bundle(rows, start) if len(rows) == tile.width else None
    found = hashes(tile.node_level, start, end)
    return hash_tile(found) if len(found) == tile.width else None
