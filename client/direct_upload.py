"""Direct-to-blob uploads from the device: the bytes go straight to Blob Storage, not through the app.

Flow (server side: README "Direct uploads"): hash the file while reading it (SHA-256, streamed),
ask for a grant (``POST /api/uploads``, signed ``direct-upload:{challenge}:{sha256}:{size}:{type}``),
send the file as blocks of the grant's ``block_size`` with the Azure Storage SDK (Put Block,
``concurrency`` at once, then one Put Block List) to the grant's ``upload_url``, then wait until
the server has verified what arrived (``GET /api/uploads/{id}``).

Block ``i`` covers bytes ``[i * block_size, (i + 1) * block_size)`` and has the id
:func:`block_id` ``(i)``, so an interrupted upload resumes (:func:`direct_upload` with
``resume=True``): the grant is renewed (a fresh URL and the list of blocks already staged, which
the URL itself may not read) and only the missing blocks are sent. An upload URL that expires
during a long transfer is renewed the same way (:func:`send_renewing`). Each block is read with
``os.pread`` inside the worker that sends it, so memory holds at most ``concurrency`` blocks
whatever the file's size.

Pending uploads are remembered in ``<home>/uploads/<upload_id>.json`` (``{upload_id, path,
sha256, size, content_type}``) from the grant until a final state is seen.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobBlock, BlobClient

from client.device_api import ClientError, DeviceClient, guess_content_type, sha256_file
from client.state import ensure_home, resolve_home, write_private_file

DEFAULT_CONCURRENCY = 4
DEFAULT_WAIT_SECONDS = 600.0
MAX_RENEWALS = 20  # upload URLs renewed during one transfer (each lives UPLOAD_SAS_TTL_SECONDS)
FINAL_STATES = ("verified", "digest_mismatch", "size_mismatch", "expired")

#: ``progress(bytes_done, total_bytes)`` as blocks are staged (already staged blocks count at once).
ProgressCallback = Callable[[int, int], None]


@dataclass
class PendingUpload:
    """A grant this device has not yet seen in a final state (saved under ``<home>/uploads/``)."""

    upload_id: str
    path: str
    sha256: str
    size: int
    content_type: str


@dataclass
class DirectUploadResult:
    """What :func:`direct_upload` ends with: the grant's final ``state`` view from the server,
    blocks sent now vs. found staged, and timings (seconds): ``transfer`` (blocks + commit) and
    ``verification`` (commit to final state)."""

    upload_id: str
    state: dict[str, Any]
    blocks_sent: int
    blocks_skipped: int
    transfer_seconds: float
    verification_seconds: float


def block_id(index: int) -> str:
    """The id of block ``index`` (same length for all blocks of a blob, as the service requires)."""
    return f"{index:06d}"


def block_ranges(size: int, block_size: int) -> list[tuple[str, int, int]]:
    """``(block id, offset, length)`` of every block of a ``size``-byte file."""
    return [(block_id(i), offset, min(block_size, size - offset)) for i, offset in enumerate(range(0, size, block_size))]


def pending_dir(home: str | os.PathLike[str] | None) -> Path:
    return resolve_home(home) / "uploads"


def save_pending(home: str | os.PathLike[str] | None, pending: PendingUpload) -> None:
    directory = pending_dir(home)
    ensure_home(directory)
    write_private_file(directory / f"{pending.upload_id}.json", json.dumps(asdict(pending)).encode("utf-8"))


def forget_pending(home: str | os.PathLike[str] | None, upload_id: str) -> None:
    try:
        (pending_dir(home) / f"{upload_id}.json").unlink()
    except FileNotFoundError:
        pass


def find_pending(home: str | os.PathLike[str] | None, path: Path) -> PendingUpload | None:
    """The newest remembered pending upload of ``path`` (compared as absolute paths), if any."""
    directory = pending_dir(home)
    found: list[tuple[float, PendingUpload]] = []
    for entry in directory.glob("*.json") if directory.is_dir() else []:
        try:
            pending = PendingUpload(**json.loads(entry.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if pending.path == str(path.resolve()):
            found.append((entry.stat().st_mtime, pending))
    return max(found, key=lambda item: item[0])[1] if found else None


def send_blocks(upload_url: str, path: Path, size: int, block_size: int, *, staged: dict[str, int] | None = None,
                concurrency: int = DEFAULT_CONCURRENCY, progress: ProgressCallback | None = None) -> tuple[int, int]:
    """Stage every block of ``path`` not already in ``staged`` (id → size) at ``upload_url``, then
    commit the full block list. Returns ``(blocks sent, blocks skipped)``.

    Raises :class:`azure.core.exceptions.HttpResponseError` when Blob Storage refuses (e.g. 403
    for an expired URL: renew and resume) and :class:`OSError` when the file cannot be read.
    """
    blocks = block_ranges(size, block_size)
    staged = staged or {}
    missing = [block for block in blocks if staged.get(block[0]) != block[2]]
    done = size - sum(length for _, _, length in missing)
    if progress:
        progress(done, size)
    blob = BlobClient.from_blob_url(upload_url, connection_timeout=20, read_timeout=120)
    with open(path, "rb") as handle, ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="block") as pool:
        descriptor = handle.fileno()

        def stage(block: tuple[str, int, int]) -> int:
            identifier, offset, length = block
            data = os.pread(descriptor, length, offset)
            if len(data) != length:
                raise OSError(f"{path} is shorter than when it was hashed")
            blob.stage_block(identifier, data, length=length)
            return length

        futures = [pool.submit(stage, block) for block in missing]
        try:
            for future in futures:
                done += future.result()
                if progress:
                    progress(done, size)
        except BaseException:
            for future in futures:  # blocks under way finish (the pool waits for them); the rest never start
                future.cancel()
            raise
    blob.commit_block_list([BlobBlock(block_id=identifier) for identifier, _, _ in blocks])
    return len(missing), len(blocks) - len(missing)


def send_renewing(device: DeviceClient, prepared: PreparedUpload, *, concurrency: int = DEFAULT_CONCURRENCY,
                  progress: ProgressCallback | None = None, max_renewals: int = MAX_RENEWALS) -> tuple[int, int]:
    """:func:`send_blocks` for ``prepared``; when Blob Storage answers 403 (the upload URL expired
    during a long transfer: it lives ``UPLOAD_SAS_TTL_SECONDS``), renew the grant and go on with
    the blocks not yet staged, at most ``max_renewals`` times. Returns ``(blocks sent, blocks
    found staged at the start)``. Raises what :func:`send_blocks` raises, and :class:`ClientError`
    409 when the grant itself is no longer pending."""
    block_size = int(prepared.grant["block_size"])
    blocks = block_ranges(prepared.size, block_size)
    skipped = sum(1 for identifier, _, length in blocks if prepared.staged.get(identifier) == length)
    url, staged, renewals = prepared.grant["upload_url"], prepared.staged, 0
    while True:
        try:
            send_blocks(url, prepared.path, prepared.size, block_size, staged=staged, concurrency=concurrency,
                        progress=progress)
            return len(blocks) - skipped, skipped
        except HttpResponseError as error:
            if error.status_code != 403 or renewals >= max_renewals:
                raise
        renewals += 1
        renewed = device.renew_upload(prepared.grant["upload_id"])
        url = renewed["upload_url"]
        staged = {block["id"]: block["size"] for block in renewed.get("staged_blocks") or []}


def wait_for_verdict(device: DeviceClient, upload_id: str, timeout: float = DEFAULT_WAIT_SECONDS,
                     max_interval: float = 2.0) -> dict[str, Any]:
    """Poll ``GET /api/uploads/{upload_id}`` until its state is final (or ``timeout`` seconds);
    returns the last answer. Polls every 0.1 s at first, backing off to ``max_interval``."""
    deadline = time.monotonic() + timeout
    interval = min(0.1, max_interval)
    while True:
        answer = device.upload_state(upload_id)
        if answer.get("state") in FINAL_STATES or time.monotonic() >= deadline:
            return answer
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)


@dataclass
class PreparedUpload:
    """A grant ready to send to: ``grant`` (``upload_id``, ``upload_url``, ``block_size``, ...), the
    file's ``sha256``/``size``, blocks already ``staged`` (id → size) and whether the blob is
    already ``committed`` (then only the verdict is awaited)."""

    path: Path
    sha256: str
    size: int
    grant: dict[str, Any]
    staged: dict[str, int]
    committed: bool


def prepare_direct_upload(device: DeviceClient, path: str | os.PathLike[str], *, content_type: str | None = None,
                          home: str | os.PathLike[str] | None = None, resume: bool = False,
                          hash_progress: ProgressCallback | None = None) -> PreparedUpload:
    """Hash ``path`` and get a grant for it: with ``resume``, the remembered pending grant of the
    same path, size and SHA-256 is renewed (its staged blocks listed); otherwise, or if that grant
    is no longer pending, a new one is requested and remembered. Raises :class:`ClientError`,
    :class:`client.device_api.TransportError`, :class:`OSError`."""
    file_path = Path(path)
    content_type = (content_type or guess_content_type(file_path)).lower()
    with open(file_path, "rb") as handle:
        sha256_hex, size = _hash(handle, hash_progress)
    remembered = find_pending(home, file_path) if resume else None
    if remembered and (remembered.sha256, remembered.size) == (sha256_hex, size):
        try:
            renewed = device.renew_upload(remembered.upload_id)
            staged = {block["id"]: block["size"] for block in renewed.get("staged_blocks") or []}
            return PreparedUpload(file_path, sha256_hex, size, {"upload_id": remembered.upload_id, **renewed}, staged,
                                  bool(renewed.get("committed")))
        except ClientError as error:
            if error.status not in (404, 409):
                raise
            forget_pending(home, remembered.upload_id)  # verified, refused or expired: start over
    elif remembered:
        forget_pending(home, remembered.upload_id)  # the file changed since: that grant can never verify
    grant = device.create_upload(file_path.name, size, sha256_hex, content_type)
    save_pending(home, PendingUpload(grant["upload_id"], str(file_path.resolve()), sha256_hex, size, content_type))
    return PreparedUpload(file_path, sha256_hex, size, grant, {}, False)


def direct_upload(device: DeviceClient, path: str | os.PathLike[str], *, content_type: str | None = None,
                  home: str | os.PathLike[str] | None = None, resume: bool = False,
                  concurrency: int = DEFAULT_CONCURRENCY, progress: ProgressCallback | None = None,
                  hash_progress: ProgressCallback | None = None,
                  wait_seconds: float = DEFAULT_WAIT_SECONDS, poll_max_interval: float = 2.0) -> DirectUploadResult:
    """Upload ``path`` by the direct path and wait for the server's verdict:
    :func:`prepare_direct_upload`, :func:`send_blocks` (unless already committed),
    :func:`wait_for_verdict`.

    Raises :class:`ClientError` (grant refused, e.g. 413 or 429),
    :class:`client.device_api.TransportError`, :class:`OSError`, and the SDK's
    :class:`azure.core.exceptions.AzureError` for a refused block upload. The pending upload
    stays remembered after an error or interruption, for ``resume``.
    """
    prepared = prepare_direct_upload(device, path, content_type=content_type, home=home, resume=resume,
                                     hash_progress=hash_progress)
    grant = prepared.grant
    started = time.perf_counter()
    sent = skipped = 0
    if not prepared.committed:
        sent, skipped = send_renewing(device, prepared, concurrency=concurrency, progress=progress)
    committed_at = time.perf_counter()
    state = wait_for_verdict(device, grant["upload_id"], wait_seconds, poll_max_interval)
    if state.get("state") in FINAL_STATES:
        forget_pending(home, grant["upload_id"])
    return DirectUploadResult(grant["upload_id"], state, sent, skipped, committed_at - started,
                              time.perf_counter() - committed_at)


def _hash(handle: Any, progress: ProgressCallback | None) -> tuple[str, int]:
    if progress is None:
        return sha256_file(handle)
    total = os.fstat(handle.fileno()).st_size

    class _Counting:
        read_so_far = 0

        def read(self, n: int) -> bytes:
            chunk = handle.read(n)
            self.read_so_far += len(chunk)
            progress(self.read_so_far, total)
            return chunk

    return sha256_file(_Counting(), chunk_bytes=4 * 1024 * 1024)
