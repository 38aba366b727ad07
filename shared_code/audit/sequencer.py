"""Appending entries in one total order across instances, and folding them into the tree state.

The log segments (:mod:`.storage`) are the truth; everything else is derived from them, forward:

- **Order.** Entry ``seq`` n is appended to segment ``n // SEGMENT_ENTRIES`` at the byte offset
  where entry n - 1 ended, with the Append Blob position condition. Of two instances appending at
  the same offset the service takes exactly one (the other gets 412), so records never interleave
  and ``seq`` (written inside the entry) always equals the leaf index. The loser re-reads and
  retries with the next ``seq``. Concurrent entries of one process share one block (group
  commit, :func:`append`).
- **Tree state.** Cosmos item ``audit_state/log`` = ``{size, offset, tile_offset, range}``: the
  next entry's position and the compact range of the first ``size`` leaves (O(log n) hashes), so
  an append costs O(log n) and never rebuilds the tree. Each process keeps the state it last
  folded in memory and stores it every :data:`SAVE_EVERY` entries (so an append is one storage
  call), replaced with its etag; a lost race keeps whichever state is further along (both are
  prefixes of the same segments). It may lag the segments; whoever next reads the segments past
  it (an append that meets 412, a new process, the checkpoint timer) folds the missing records in.
- **Derived writes of a fold**, done before the state moves past them, each idempotent: the
  level-0 hash tile when 256 leaves complete, each completed node of height 8, 16, … into its
  upper tile, and an ``audit_index`` item per device an entry names.

Crash (or timeout: the write may still land later) after each step of :func:`append`:

1. after the Append Block of entry n is sent, before its answer: the entry is durable or not.
   The request fails with 503 and its decision does not take effect. If the block lands anyway,
   the log holds a decision that did not take effect (a log entry never lacks for an effect; the
   converse is documented). The next append at that offset gets 412 and folds it in.
2. after the append succeeded, before the fold's derived writes: the entry is durable and the
   request succeeds; the stored state lags (by fewer than :data:`SAVE_EVERY` entries). The next
   append from a process without the entry in memory gets 412 at the stale offset, reads the
   records and does the fold (tiles, index) itself.
3. after some derived writes, before the state is stored: as 2; the writes repeat harmlessly.
4. after the state is stored: nothing left to do.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from shared_code.audit import storage
from shared_code.audit.entries import encode_record
from shared_code.audit.merkle import CompactRange, leaf_hash, subtree_root
from shared_code.audit.storage import PositionTaken
from shared_code.platform import cosmos
from shared_code.platform.errors import ServiceUnavailable

log = logging.getLogger("trustgate.audit")

STATE_ID = "log"
MAX_ATTEMPTS = 64
MAX_SAVE_ATTEMPTS = 8
#: The tree state item is stored after every this many entries (and by every catch-up and
#: checkpoint), so it lags the segments by fewer entries than this: a new process or another
#: instance folds at most that many records to catch up.
SAVE_EVERY = 16
#: Group commit: at most this many entries, and this many bytes, in one Append Block (the
#: service takes blocks of up to 4 MiB).
MAX_BATCH_ENTRIES = 64
MAX_BATCH_BYTES = 1024 * 1024


@dataclass
class TreeState:
    """Where the next entry goes and the tree of the entries before it.

    ``size``: entries folded; ``offset``: byte offset of entry ``size`` in segment
    ``size // SEGMENT_ENTRIES``; ``tile_offset``: byte offset of entry ``size - size % 256``
    (first entry of the incomplete level-0 tile); ``tree``: compact range; ``etag``: of the
    stored item (None if none is stored).
    """

    size: int
    offset: int
    tile_offset: int
    tree: CompactRange
    etag: str | None = None

    @classmethod
    def empty(cls) -> "TreeState":
        return cls(0, 0, 0, CompactRange.empty())

    @classmethod
    def from_item(cls, item: dict) -> "TreeState":
        tree = CompactRange(item["size"], [(level, base64.b64decode(h)) for level, h in item["range"]])
        tree.check()
        return cls(item["size"], item["offset"], item["tile_offset"], tree, item.get("_etag"))

    def to_item(self) -> dict:
        return {"id": STATE_ID, "size": self.size, "offset": self.offset, "tile_offset": self.tile_offset,
                "range": [[level, base64.b64encode(h).decode("ascii")] for level, h in self.tree.nodes]}

    def copy(self) -> "TreeState":
        return TreeState(self.size, self.offset, self.tile_offset, CompactRange(self.tree.size, list(self.tree.nodes)),
                         self.etag)


_lock = threading.Lock()
_cached: TreeState | None = None


def load_state() -> TreeState:
    """The stored tree state (an empty tree when none is stored yet). Raises ServiceUnavailable."""
    item = cosmos.read_item(cosmos.AUDIT_STATE, STATE_ID, STATE_ID)
    return TreeState.from_item(item) if item else TreeState.empty()


def save_state(state: TreeState) -> TreeState:
    """Store ``state`` unless the stored one is already as far; returns the stored state.

    Create when none exists, else replace on the etag; after a lost race the further state wins
    (both describe prefixes of the same segments). Raises ServiceUnavailable.
    """
    for _ in range(MAX_SAVE_ATTEMPTS):
        try:
            if state.etag is None:
                stored = cosmos.create_item(cosmos.AUDIT_STATE, state.to_item())
            else:
                stored = cosmos.replace_item(cosmos.AUDIT_STATE, state.to_item(), state.etag)
            return TreeState.from_item(stored)
        except (cosmos.AlreadyExists, cosmos.EtagMismatch):
            current = load_state()
            if current.size >= state.size:
                return current
            state = state.copy()
            state.etag = current.etag
    raise ServiceUnavailable(detail="the audit log state is contended, try again")


def _fold(state: TreeState, seq: int, next_offset: int, entry: bytes) -> None:
    """Fold entry ``seq`` (== ``state.size``) into ``state`` after its derived writes."""
    if seq != state.size:
        raise ValueError(f"fold of entry {seq} into a tree of size {state.size}")
    for level, index, node in state.tree.append(leaf_hash(entry)):
        if level == storage.TILE_HEIGHT:
            _write_leaf_tile(index, state.tile_offset, node)
        if level and level % storage.TILE_HEIGHT == 0:
            storage.append_tile_hash(level // storage.TILE_HEIGHT, index // storage.TILE_WIDTH, index % storage.TILE_WIDTH, node)
    _index(seq, entry)
    state.size, state.offset = seq + 1, next_offset
    if state.size % storage.TILE_WIDTH == 0:
        state.tile_offset = next_offset


def _write_leaf_tile(index: int, offset: int, expected_root: bytes) -> None:
    first = index * storage.TILE_WIDTH
    hashes = [leaf_hash(entry) for _, _, entry in _take(storage.iter_records(
        storage.log_segment, first, offset, storage.SEGMENT_ENTRIES), storage.TILE_WIDTH)]
    if len(hashes) != storage.TILE_WIDTH or subtree_root(hashes) != expected_root:
        raise ValueError(f"level-0 tile {index} does not match the tree (offset {offset})")
    storage.write_leaf_tile(index, b"".join(hashes), offset)


def _take(records, count: int) -> list:
    taken = []
    for record in records:
        taken.append(record)
        if len(taken) == count:
            break
    return taken


def subjects(entry: dict) -> set[str]:
    """The index subjects of a parsed entry: ``device:<id>`` for the device it names or is."""
    found = set()
    device = (entry.get("objects") or {}).get("device")
    if isinstance(device, str):
        found.add(f"device:{device}")
    if str(entry.get("actor", "")).startswith("device:"):
        found.add(entry["actor"])
    return found


def _index(seq: int, entry: bytes) -> None:
    for subject in sorted(subjects(json.loads(entry))):
        cosmos.upsert_item(cosmos.AUDIT_INDEX, {"id": f"{seq:012d}", "subject": subject, "seq": seq})


def catch_up(state: TreeState, save: bool = True) -> TreeState:
    """Fold every record stored past ``state`` (or past the stored state, if that is further)
    and, with ``save``, store the result; returns it. Raises ServiceUnavailable."""
    stored = load_state()
    state = stored if stored.size > state.size or state.etag is None else state.copy()
    folded = False
    try:
        for seq, next_offset, entry in storage.iter_records(storage.log_segment, state.size, state.offset,
                                                            storage.SEGMENT_ENTRIES):
            _fold(state, seq, next_offset, entry)
            folded = True
    except ValueError as exc:
        log.error("audit log cannot be folded: %s", exc)
        raise ServiceUnavailable(detail="the audit log is inconsistent; see the server log") from exc
    behind = folded or state.etag is None or state.size > stored.size  # the stored state lags
    return save_state(state) if save and behind else state


@dataclass
class _Pending:
    """One caller's entry waiting to be appended (group commit)."""

    make_entry: Callable[[int], bytes]
    done: threading.Event = field(default_factory=threading.Event)
    seq: int = -1
    error: BaseException | None = None


_queue: list[_Pending] = []
_queue_lock = threading.Lock()
_leading = False  # a thread is writing batches (it takes whatever is queued until none is)


def append(make_entry: Callable[[int], bytes]) -> int:
    """Append the entry ``make_entry(seq)`` (canonical bytes for that ``seq``) as the next entry;
    returns its ``seq`` once the record is durable.

    **Group commit.** The entries of concurrent callers in one process go out together: the caller
    that finds no batch being written writes batches until none is waiting; each batch takes every
    entry queued meanwhile, numbers them, and appends their records as one Append Block (at most :data:`MAX_BATCH_ENTRIES` / :data:`MAX_BATCH_BYTES`,
    never across a segment end), so N concurrent decisions cost one storage call, not N, and one
    block is all or nothing: every caller of a batch returns only once its record is durable, or
    they all get the same error. Batches of several instances are ordered by the service
    (position condition) and retried after a re-read.

    Raises :class:`ServiceUnavailable` if the record could not be stored (then it is not in the
    log, or, after a timeout, it may land later: see the module doc). A failure of the fold after
    a durable append is logged, not raised: the entry is in the log and the next append repairs.
    """
    global _leading
    mine = _Pending(make_entry)
    with _queue_lock:
        _queue.append(mine)
        lead = not _leading
        _leading = True
    if lead:  # no batch is being written: write them until none is waiting
        with _lock:
            while True:
                with _queue_lock:
                    batch = _queue[:MAX_BATCH_ENTRIES]
                    del _queue[:MAX_BATCH_ENTRIES]
                    if not batch:
                        _leading = False
                        break
                _commit(batch)
    mine.done.wait()
    if mine.error is not None:
        raise mine.error
    return mine.seq


def _commit(batch: list[_Pending]) -> None:
    """Append ``batch`` in as few blocks as its segment allows, settling every caller in it."""
    while batch:
        try:
            taken = _append_block(batch)
        except BaseException as exc:  # settle every caller of the failed block, then go on
            for pending in batch:
                pending.error = exc
                pending.done.set()
            return
        for pending in batch[:taken]:
            pending.done.set()
        batch = batch[taken:]


def _append_block(batch: list[_Pending]) -> int:
    """Append the first entries of ``batch`` as one block; returns how many (each one's ``seq``
    set). Called with the append turn held."""
    global _cached
    state = _cached.copy() if _cached else load_state()
    caught_up = False  # other writers' records were folded in: store the state now
    for attempt in range(MAX_ATTEMPTS):
        first = state.size
        room = storage.SEGMENT_ENTRIES - first % storage.SEGMENT_ENTRIES
        entries: list[bytes] = []
        records: list[bytes] = []
        size = 0
        for offset, pending in enumerate(batch[:room]):
            entry = pending.make_entry(first + offset)
            record = encode_record(entry)
            if records and size + len(record) > MAX_BATCH_BYTES:
                break
            entries.append(entry)
            records.append(record)
            size += len(record)
        block = b"".join(records)
        segment = storage.log_segment(first // storage.SEGMENT_ENTRIES)
        try:
            storage.append_at(segment, block, state.offset)
        except PositionTaken:
            # Ours, if an earlier try of this very block landed (a lost answer, SDK retry).
            if storage.read_bytes(segment, state.offset, len(block)) != block:
                # Another writer's record: move to the true end and retry at once (the winners
                # store the state; a short random pause spreads a crowd of losers).
                _cached = None
                state, caught_up = catch_up(state, save=False), True
                time.sleep(random.uniform(0, 0.002 * attempt))
                continue
        _cached = None
        for index, pending in enumerate(batch[:len(entries)]):
            pending.seq = first + index
        try:
            offset = state.offset
            for index, (entry, record) in enumerate(zip(entries, records)):
                seq = first + index
                offset += len(record)
                _fold(state, seq, offset if (seq + 1) % storage.SEGMENT_ENTRIES else 0, entry)
            # The segments are the truth and the state may lag them (module docstring), so it
            # is stored every SAVE_EVERY entries, not per entry: one storage call per block.
            due = caught_up or state.etag is None or state.size // SAVE_EVERY > first // SAVE_EVERY
            _cached = save_state(state) if due else state
        except (ServiceUnavailable, ValueError) as exc:
            log.warning("audit entries %d-%d are stored; folding failed (%s), the next append repairs",
                        first, first + len(entries) - 1, exc)
        return len(entries)
    raise ServiceUnavailable(detail="the audit log is busy, try again")


def synced_state() -> TreeState:
    """The tree state with every stored record folded in (for checkpoints). Raises ServiceUnavailable."""
    global _cached
    with _lock:
        state = catch_up(_cached.copy() if _cached else TreeState.empty())
        _cached = state
        return state.copy()


def reset_cache() -> None:
    """Forget the cached state and tiles (tests and tools, after pointing at other storage)."""
    global _cached
    with _lock:
        _cached = None
    storage.forget_tiles()
