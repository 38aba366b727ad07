"""Reading the log: node hashes from the tiles, proofs at any tree size, entries by index, and the
entries about one device.

A node at height ``h`` is the root of at most 128 hashes of one tile (height ``8 * (h // 8)``), so
an RFC 9162 proof for a tree of size n reads O(log n) tiles of 8 KiB (two or three per tile
level), plus the records of the incomplete level-0 tile (at most 255 entries) when the proof
touches it; full tiles are cached in the process. Nothing re-reads the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared_code.audit import merkle, storage
from shared_code.audit.sequencer import TreeState, synced_state
from shared_code.audit.storage import HASH_BYTES
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.continuation import seal, unseal
from shared_code.platform.errors import BadRequest, ServiceUnavailable


def _split(data: bytes) -> list[bytes]:
    return [data[i:i + HASH_BYTES] for i in range(0, len(data), HASH_BYTES)]


class TreeReader:
    """Node hashes of the tree described by ``state`` (the stored tree state, or any later one)."""

    def __init__(self, state: TreeState) -> None:
        self.state = state
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def _tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self._tiles:
            if level == 0 and index == self.state.size // storage.TILE_WIDTH:
                first = index * storage.TILE_WIDTH
                self._tiles[key] = [merkle.leaf_hash(entry) for seq, _, entry in storage.iter_records(
                    storage.log_segment, first, self.state.tile_offset, storage.SEGMENT_ENTRIES) if seq < self.state.size]
            else:
                self._tiles[key] = _split(storage.read_tile(level, index))
        return self._tiles[key]

    def node(self, level: int, index: int) -> bytes:
        """The hash of node ``(level, index)``, which must lie inside the first ``state.size``
        leaves. Raises :class:`ServiceUnavailable` if a tile it needs is missing."""
        tile_level, height = divmod(level, storage.TILE_HEIGHT)
        first = index << height
        tile = self._tile(tile_level, first // storage.TILE_WIDTH)
        hashes = tile[first % storage.TILE_WIDTH:first % storage.TILE_WIDTH + (1 << height)]
        if len(hashes) != 1 << height:
            raise ServiceUnavailable(detail=f"audit tile {tile_level}/{first // storage.TILE_WIDTH} is incomplete")
        return merkle.subtree_root(hashes)


def _reader(size: int) -> TreeReader:
    state = synced_state()
    if size > state.size:
        raise BadRequest("invalid_size", f"the log has {state.size} entries")
    return TreeReader(state)


def inclusion(index: int, size: int) -> tuple[bytes, list[bytes]]:
    """``(leaf hash, RFC 9162 §2.1.3.1 inclusion proof)`` of entry ``index`` in the tree of ``size``.

    Raises :class:`BadRequest` ``invalid_index`` / ``invalid_size`` unless 0 <= index < size <=
    the log's size, :class:`ServiceUnavailable` on a storage fault."""
    if not 0 <= index < size:
        raise BadRequest("invalid_index", "index must be in [0, size)")
    reader = _reader(size)
    return reader.node(0, index), merkle.inclusion_proof(reader.node, index, size)


def consistency(old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof between tree sizes ``old_size`` and ``new_size``.

    Raises :class:`BadRequest` ``invalid_size`` unless 0 < old_size <= new_size <= the log's size."""
    if not 0 < old_size <= new_size:
        raise BadRequest("invalid_size", "sizes must satisfy 0 < from <= to")
    return merkle.consistency_proof(_reader(new_size).node, old_size, new_size)


def entries(start: int, end: int, state: TreeState | None = None) -> list[tuple[int, str]]:
    """Entries ``[start, end)`` as ``(seq, canonical JSON text)``, ``end`` capped at the log's
    size. Reads from the first record of ``start``'s tile on. Raises ServiceUnavailable."""
    state = state or synced_state()
    end = min(end, state.size)
    if start >= end:
        return []
    tile = start // storage.TILE_WIDTH
    offset = state.tile_offset if tile == state.size // storage.TILE_WIDTH else storage.tile_offset(tile)
    if offset is None:
        raise ServiceUnavailable(detail=f"audit tile 0/{tile} is missing")
    found = []
    for seq, _, entry in storage.iter_records(storage.log_segment, tile * storage.TILE_WIDTH, offset, storage.SEGMENT_ENTRIES):
        if seq >= end:
            break
        if seq >= start:
            found.append((seq, entry.decode("utf-8")))
    return found


@dataclass(frozen=True)
class SubjectPage:
    """One page of a subject's entries: ``[(seq, entry text)]`` oldest first, and the continuation."""

    entries: list[tuple[int, str]]
    continuation: str | None


AUDIT_CONTINUATION = "audit-continuation"


def subject_entries(subject: str, page_size: int, continuation: str | None, size: int) -> SubjectPage:
    """The entries the index lists for ``subject`` (e.g. ``device:<id>``), oldest first, among the
    first ``size``. ``continuation`` is one this function returned for ``subject``: the Cosmos
    continuation sealed for the subject (:mod:`shared_code.platform.continuation`), so no
    client-made token reaches the query. Raises :class:`BadRequest` ``invalid_continuation``,
    ServiceUnavailable."""
    state = synced_state()
    key = get_settings().device_token_pepper
    cosmos_continuation = unseal(key, AUDIT_CONTINUATION, subject, continuation) if continuation else None
    try:
        items, following = cosmos.query_page(
            cosmos.AUDIT_INDEX, "SELECT c.seq FROM c WHERE c.subject = @subject AND c.seq < @size ORDER BY c.seq",
            [{"name": "@subject", "value": subject}, {"name": "@size", "value": size}], partition_key=subject, page_size=page_size,
            continuation=cosmos_continuation)
    except cosmos.InvalidContinuation:
        raise BadRequest("invalid_continuation", "continuation is not one this API returned") from None
    found = [entry for item in items for entry in entries(item["seq"], item["seq"] + 1, state)]
    return SubjectPage(found, seal(key, AUDIT_CONTINUATION, subject, following) if following else None)
