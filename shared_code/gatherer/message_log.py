"""The gathered messages: JSON lines in Append Blobs, one stream per user, read back oldest first.

Each message is one line ``{"ts", "user", "message", "id"}`` (``json.dumps`` escapes newlines,
quotes and control characters, so a message can never break the line structure), appended as
one block to the blob ``{user}/{generation:08d}/{YYYY-MM-DD}/{seq:06d}.jsonl`` of container
``MESSAGES_CONTAINER``, where ``generation`` numbers the user's authentications (one access token
each, :mod:`shared_code.gatherer.protocol`). Append Block is atomic on the service, so concurrent
requests need no lock and each line lands whole, once. The SDK is told not to retry an append
whose request may have reached the service (read timeouts, 5xx), since a retry after a lost
response would write the line twice; such a failure is a 503 and the caller decides.

**Revocation by sealing.** A token's messages go only to its generation's blobs, and revoking the
token (logout, a new AUTHENTICATE) seals them (Seal Append Blob): the service itself then refuses
every further Append Block (``409 BlobIsSealed``), atomically, on every instance, so an append
needs no read of the user's state and no append can land after the revocation is acknowledged.
The one blob a revoked token could still reach is one it creates itself (a new day, a rollover):
:func:`append_message` asks its caller to confirm the token is still live after creating a blob
and before writing to it, and seals the blob when it is not; :func:`seal_generation` lists the
generation's blobs, so it seals every blob created before the revocation was recorded (see
:func:`shared_code.gatherer.protocol.logout` for the order of the steps).

An append blob takes at most 50,000 blocks (Azure Storage limits). A writer moves to the next
``seq`` once a response reports :data:`ROLLOVER_BLOCKS` committed blocks, and also when the
service refuses with ``BlockCountExceedsLimit``. Names sort by user, generation, day, then ``seq``,
so listing a user's prefix gives one ordered stream: a user's tokens follow one another, and
within one the order in which the service committed the blocks (concurrent messages have no
other order).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobType, ContainerClient, ContentSettings

from shared_code.platform import blobs
from shared_code.platform.config import get_settings
from shared_code.platform.continuation import seal, unseal
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.message_log")

SERVICE_BLOCK_LIMIT = 50_000
#: Start the next blob at this many committed blocks; the gap to the service's limit absorbs
#: appends already in flight from other instances.
ROLLOVER_BLOCKS = 49_000
READ_WINDOW_BYTES = 1024 * 1024
CONTENT_TYPE = "application/x-ndjson; charset=utf-8"
_NAME = re.compile(
    r"(?P<user>[A-Za-z0-9._-]{1,32})/(?P<generation>\d{8})/(?P<day>\d{4}-\d{2}-\d{2})/(?P<seq>\d{6})\.jsonl")
_MAX_CACHED = 10_000

_lock = threading.Lock()
_current_seq: dict[tuple[str, int, str], int] = {}


class StreamSealed(Exception):
    """The token's stream is sealed: the token was revoked (logout or a newer AUTHENTICATE)."""


@dataclass(frozen=True)
class StoredMessage:
    """A stored line: its server-made ``id`` (hex UUID4), ``ts`` (ISO UTC) and the blob it is in."""

    id: str
    ts: str
    blob_name: str


def generation_prefix(user: str, generation: int) -> str:
    """The blob name prefix of ``user``'s stream under authentication ``generation`` (>= 1)."""
    return f"{user}/{generation:08d}/"


def blob_name(user: str, generation: int, day: str, seq: int) -> str:
    """The blob holding ``user``'s messages sent with generation ``generation``'s token on ``day``
    (``YYYY-MM-DD``), part ``seq`` (from 0)."""
    return f"{generation_prefix(user, generation)}{day}/{seq:06d}.jsonl"


def _container() -> ContainerClient:
    return blobs.container_client(get_settings().messages_container)


def _first_seq(user: str, generation: int, day: str) -> int:
    """The highest existing part of the day's stream (0 if none), for a process that has not written yet."""
    names = [b.name for b in _container().list_blobs(name_starts_with=f"{generation_prefix(user, generation)}{day}/")]
    seqs = [int(m["seq"]) for m in map(_NAME.fullmatch, names) if m]
    return max(seqs, default=0)


def _seq_for(user: str, generation: int, day: str) -> int:
    key = (user, generation, day)
    with _lock:
        seq = _current_seq.get(key)
    if seq is None:
        seq = _first_seq(user, generation, day)
        with _lock:
            if len(_current_seq) >= _MAX_CACHED:
                _current_seq.clear()
            seq = max(seq, _current_seq.get(key, 0))
            _current_seq[key] = seq
    return seq


def _advance(user: str, generation: int, day: str, past: int) -> None:
    key = (user, generation, day)
    with _lock:
        _current_seq[key] = max(_current_seq.get(key, 0), past + 1)


def encode_line(ts: str, user: str, message: str, message_id: str) -> bytes:
    """One log line: compact JSON ``{ts, user, message, id}`` plus ``\\n``, UTF-8 (no raw newline inside)."""
    document = {"ts": ts, "user": user, "message": message, "id": message_id}
    return (json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def append_message(user: str, generation: int, message: str, confirm_live: Callable[[], None],
                   now: datetime | None = None) -> StoredMessage:
    """Append ``message`` (valid Unicode text) to ``user``'s stream of authentication
    ``generation``; returns where it went. One Append Block on the common path.

    When the day's blob does not exist yet it is created (create-if-not-exists, so racing
    creators don't truncate each other's lines) and ``confirm_live()`` is called before anything
    is written to it: it must raise when the token is no longer live, and then the new blob is
    sealed and the error propagates. Raises :class:`StreamSealed` when the stream is sealed (the
    token was revoked), :class:`~shared_code.platform.errors.ServiceUnavailable` when Blob Storage
    fails (the line is then not stored, or after a lost response stored once).
    """
    moment = now or utc_now()
    ts, day = to_iso(moment), moment.strftime("%Y-%m-%d")
    message_id = uuid.uuid4().hex
    line = encode_line(ts, user, message, message_id)
    with blobs.storage_errors("message append"):
        for _attempt in range(5):
            seq = _seq_for(user, generation, day)
            name = blob_name(user, generation, day, seq)
            client = _container().get_blob_client(name)
            try:
                # Connection failures are retried (nothing reached the service); read timeouts
                # and 5xx are not: the block may have been committed.
                result = client.append_block(line, length=len(line), retry_read=0, retry_status=0)
            except ResourceNotFoundError as exc:
                if exc.error_code != "BlobNotFound":
                    raise
                _create_confirmed(client, confirm_live)
                continue
            except ResourceExistsError as exc:
                if exc.error_code == "BlobIsSealed":
                    raise StreamSealed(name) from None
                raise
            except HttpResponseError as exc:
                if exc.error_code == "BlockCountExceedsLimit":
                    _advance(user, generation, day, seq)
                    continue
                raise
            if int(result.get("blob_committed_block_count") or 0) >= ROLLOVER_BLOCKS:
                _advance(user, generation, day, seq)
            return StoredMessage(id=message_id, ts=ts, blob_name=name)
    raise ServiceUnavailable(detail="the message log is busy, try again later")


def _create_confirmed(client: Any, confirm_live: Callable[[], None]) -> None:
    """Create the append blob if missing, then let the caller confirm the token is live; seal the
    blob (whoever created it) when it is not, so a revoked token never writes to a new blob."""
    try:
        client.create_append_blob(if_none_match="*", content_settings=ContentSettings(content_type=CONTENT_TYPE))
    except (ResourceExistsError, HttpResponseError) as exc:
        if exc.status_code not in (409, 412):
            raise
    try:
        confirm_live()
    except Exception:
        _seal(client)
        raise


def _seal(client: Any) -> None:
    try:
        client.seal_append_blob()
    except (ResourceExistsError, HttpResponseError) as exc:
        if exc.error_code != "BlobIsSealed" and exc.status_code != 409:
            raise


def seal_generation(user: str, generation: int) -> int:
    """Seal every blob of ``user``'s stream under ``generation`` (a revoked token's), so the
    service refuses every further append to them; returns how many were sealed now.

    Idempotent: sealed blobs are skipped, so a retry after a failure completes the job. Raises
    :class:`~shared_code.platform.errors.ServiceUnavailable` when Blob Storage fails part-way
    (the blobs sealed so far stay sealed).
    """
    sealed = 0
    with blobs.storage_errors("message stream seal"):
        for listed in _container().list_blobs(name_starts_with=generation_prefix(user, generation)):
            if listed.blob_type == BlobType.APPENDBLOB and not listed.get("is_append_blob_sealed"):
                _seal(_container().get_blob_client(listed.name))
                sealed += 1
    return sealed


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
