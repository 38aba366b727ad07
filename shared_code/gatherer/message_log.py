"""The gathered messages: JSON lines in Append Blobs, one stream per user, read back oldest first.

Each message is one line ``{"ts", "user", "message", "id"}`` (``json.dumps`` escapes newlines,
quotes and control characters, so a message can never break the line structure), appended as
one block to the blob ``{user}/{YYYY-MM-DD}/{seq:06d}.jsonl`` of container ``MESSAGES_CONTAINER``.
Append Block is atomic on the service, so concurrent requests need no lock and each line lands
whole, once. The SDK is told not to retry an append whose request may have reached the service
(read timeouts, 5xx), since a retry after a lost response would write the line twice; such a
failure is a 503 and the caller decides.

An append blob takes at most 50,000 blocks (Azure Storage limits). A writer moves to the next
``seq`` once a response reports :data:`ROLLOVER_BLOCKS` committed blocks, and also when the
service refuses with ``BlockCountExceedsLimit``. Names sort by user, day, then ``seq``, so listing
a user's prefix gives one ordered stream: the order in which the service committed the blocks
(concurrent messages have no other order).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobType, ContainerClient, ContentSettings

from shared_code.platform import blobs
from shared_code.platform.continuation import seal, unseal
from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.message_log")

SERVICE_BLOCK_LIMIT = 50_000
#: Start the next blob at this many committed blocks; the gap to the service's limit absorbs
#: appends already in flight from other instances.
ROLLOVER_BLOCKS = 49_000
READ_WINDOW_BYTES = 1024 * 1024
CONTENT_TYPE = "application/x-ndjson; charset=utf-8"
_NAME = re.compile(r"(?P<user>[A-Za-z0-9._-]{1,32})/(?P<day>\d{4}-\d{2}-\d{2})/(?P<seq>\d{6})\.jsonl")
_MAX_CACHED = 10_000

_lock = threading.Lock()
_current_seq: dict[tuple[str, str], int] = {}


@dataclass(frozen=True)
class StoredMessage:
    """A stored line: its server-made ``id`` (hex UUID4), ``ts`` (ISO UTC) and the blob it is in."""

    id: str
    ts: str
    blob_name: str


def blob_name(user: str, day: str, seq: int) -> str:
    """The blob holding ``user``'s messages of ``day`` (``YYYY-MM-DD``), part ``seq`` (from 0)."""
    return f"{user}/{day}/{seq:06d}.jsonl"


def _container() -> ContainerClient:
    return blobs.container_client(get_settings().messages_container)


def _first_seq(user: str, day: str) -> int:
    """The highest existing part of ``user``/``day`` (0 if none), for a process that has not written yet."""
    names = [b.name for b in _container().list_blobs(name_starts_with=f"{user}/{day}/")]
    seqs = [int(m["seq"]) for m in map(_NAME.fullmatch, names) if m]
    return max(seqs, default=0)


def _seq_for(user: str, day: str) -> int:
    with _lock:
        seq = _current_seq.get((user, day))
    if seq is None:
        seq = _first_seq(user, day)
        with _lock:
            if len(_current_seq) >= _MAX_CACHED:
                _current_seq.clear()
            seq = max(seq, _current_seq.get((user, day), 0))
            _current_seq[(user, day)] = seq
    return seq


def _advance(user: str, day: str, past: int) -> None:
    with _lock:
        _current_seq[(user, day)] = max(_current_seq.get((user, day), 0), past + 1)


def encode_line(ts: str, user: str, message: str, message_id: str) -> bytes:
    """One log line: compact JSON ``{ts, user, message, id}`` plus ``\\n``, UTF-8 (no raw newline inside)."""
    document = {"ts": ts, "user": user, "message": message, "id": message_id}
    return (json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def append_message(user: str, message: str, now: datetime | None = None) -> StoredMessage:
    """Append ``message`` (valid Unicode text) to ``user``'s stream; returns where it went.

    Creates the day's blob if needed (create-if-not-exists, so racing creators don't truncate
    each other's lines). Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when Blob
    Storage fails; the line is then not stored, or (after a lost response) stored once.
    """
    moment = now or utc_now()
    ts, day = to_iso(moment), moment.strftime("%Y-%m-%d")
    message_id = uuid.uuid4().hex
    line = encode_line(ts, user, message, message_id)
    with blobs.storage_errors("message append"):
        for _attempt in range(5):
            seq = _seq_for(user, day)
            name = blob_name(user, day, seq)
            client = _container().get_blob_client(name)
            try:
                # Connection failures are retried (nothing reached the service); read timeouts
                # and 5xx are not: the block may have been committed.
                result = client.append_block(line, length=len(line), retry_read=0, retry_status=0)
            except ResourceNotFoundError as exc:
                if exc.error_code != "BlobNotFound":
                    raise
                _create_if_missing(client)
                continue
            except HttpResponseError as exc:
                if exc.error_code == "BlockCountExceedsLimit":
                    _advance(user, day, seq)
                    continue
                raise
            if int(result.get("blob_committed_block_count") or 0) >= ROLLOVER_BLOCKS:
                _advance(user, day, seq)
            return StoredMessage(id=message_id, ts=ts, blob_name=name)
    raise ServiceUnavailable(detail="the message log is busy, try again later")


def _create_if_missing(client: Any) -> None:
    try:
        client.create_append_blob(if_none_match="*", content_settings=ContentSettings(content_type=CONTENT_TYPE))
    except (ResourceExistsError, HttpResponseError) as exc:
        if exc.status_code not in (409, 412):
            raise


# -- reading back --------------------------------------------------------------------------------

MESSAGES_CONTINUATION = "messages-continuation"


def _encode_continuation(user: str, name: str, offset: int) -> str:
    """Where ``user``'s next page starts (blob ``name``, byte ``offset`` of a line start), sealed
    for ``user`` under ``JWT_SECRET`` (:mod:`shared_code.platform.continuation`)."""
    position = json.dumps({"b": name, "o": offset}, separators=(",", ":"))
    return seal(get_settings().jwt_secret, MESSAGES_CONTINUATION, user, position)


def _decode_continuation(user: str, token: str) -> tuple[str, int]:
    """The (blob name, offset) of a token :func:`_encode_continuation` made for ``user``; raises
    ``invalid_continuation`` for any other (so no client-made offset is ever read from)."""
    document = json.loads(unseal(get_settings().jwt_secret, MESSAGES_CONTINUATION, user, token))
    return document["b"], document["o"]


def _user_blobs(user: str) -> list[tuple[str, int]]:
    listed = _container().list_blobs(name_starts_with=f"{user}/")
    return sorted((b.name, b.size) for b in listed if _NAME.fullmatch(b.name) and b.blob_type == BlobType.APPENDBLOB)


def _read_lines(name: str, offset: int, size: int, limit: int, out: list[dict[str, Any]]) -> int:
    """Parse whole lines of blob ``name`` from ``offset`` into ``out`` (up to ``limit`` items);
    returns the offset after the last line taken."""
    client = _container().get_blob_client(name)
    while offset < size and len(out) < limit:
        chunk = client.download_blob(offset=offset, length=min(READ_WINDOW_BYTES, size - offset)).readall()
        end = chunk.rfind(b"\n")
        if end < 0:
            log.error("message blob %s has no line end after offset %d", name, offset)
            raise ServiceUnavailable(detail="the message log could not be read")
        for raw in chunk[: end + 1].splitlines(keepends=True):
            if len(out) >= limit:
                break
            offset += len(raw)
            document = json.loads(raw)
            out.append({"id": document["id"], "ts": document["ts"], "message": document["message"]})
    return offset


def read_messages(user: str, page_size: int, continuation: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``user``'s messages, oldest first: ``([{id, ts, message}], next continuation)``.

    ``continuation`` is ``None`` for the first page; the returned one is ``None`` after the last.
    Raises :class:`~shared_code.platform.errors.BadRequest` ``invalid_continuation`` for a token this
    API did not return to ``user`` (altered, made up, or another user's), :class:`~shared_code.platform.errors.ServiceUnavailable` when
    Blob Storage fails.
    """
    start_name, start_offset = _decode_continuation(user, continuation) if continuation else ("", 0)
    items: list[dict[str, Any]] = []
    with blobs.storage_errors("message read"):
        listed = [(name, size) for name, size in _user_blobs(user) if name >= start_name]
        for index, (name, size) in enumerate(listed):
            offset = _read_lines(name, start_offset if name == start_name else 0, size, page_size, items)
            if len(items) >= page_size:
                if offset < size:
                    return items, _encode_continuation(user, name, offset)
                following = listed[index + 1][0] if index + 1 < len(listed) else None
                return items, _encode_continuation(user, following, 0) if following else None
    return items, None
