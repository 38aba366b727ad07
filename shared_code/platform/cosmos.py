"""Cosmos DB access: the container declarations, one lazily created client, and thin helpers
that turn SDK errors into domain outcomes.

The containers below are the single source of truth for names and partition keys: the dev
stack provisions them (``devhost.provision``), Bicep declares the same in Azure, and a test
checks that the two agree. The app itself never creates databases or containers.

Outcome mapping of every helper:
- 404 on read / delete → ``None`` / ``False``; 409 on create → :class:`AlreadyExists`;
  412 on a conditional write → :class:`EtagMismatch`;
- anything else that fails (timeouts, refused connections, 5xx, throttling after the SDK's
  retries) → :class:`~shared_code.platform.errors.ServiceUnavailable` (HTTP 503).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import ContainerProxy, CosmosClient
from azure.cosmos.exceptions import CosmosHttpResponseError

from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.identity import get_credential
from shared_code.platform.transport import Urllib3Transport

log = logging.getLogger("trustgate.cosmos")


@dataclass(frozen=True)
class ContainerSpec:
    """A Cosmos container: name, partition key path, and ``default_ttl`` (-1: per-item ``ttl``).

    Convention for expiring state: a container with ``default_ttl`` set holds items that carry
    ``expires_at`` (:func:`shared_code.platform.timeutil.to_iso`) and a per-item ``ttl`` in seconds, so
    Azure expires them natively and the purge timer can delete ``expires_at < now`` as backstop.
    """

    name: str
    partition_key: str
    default_ttl: int | None = None


DEVICES = ContainerSpec("devices", "/id")
CHALLENGES = ContainerSpec("challenges", "/deviceid", default_ttl=-1)
# Device files. Direct-upload grants are file records too: pending ones carry
# expires_at + ttl (the purge convention), verified ones drop both and never expire.
FILES = ContainerSpec("files", "/deviceid", default_ttl=-1)
USERS = ContainerSpec("users", "/id")
SESSIONS = ContainerSpec("sessions", "/id", default_ttl=-1)
# KMS file keys, id = key id (SHA-256 of the file name); see shared_code.filestore.kms.
KMS_KEYS = ContainerSpec("kms_keys", "/id")
# Who may use a file key, one item per (user, file), partitioned by user so list_files is one
# single-partition query and an access check one point read; see shared_code.filestore.kms.
FILE_ACCESS = ContainerSpec("file_access", "/email")

TOKENS = ContainerSpec("tokens", "/id", default_ttl=-1)
RATE_LIMITS = ContainerSpec("rate_limits", "/id", default_ttl=-1)

# Emailed one-time codes, one item per (purpose, email): id "<purpose>:<sha256(email)>". A pending
# registration is the "register" item; it carries the bcrypt hash until its code is verified.
OTPS = ContainerSpec("otps", "/id", default_ttl=-1)

# Play Integrity tokens already used (id = SHA-256 of the token): a token verifies once.
INTEGRITY_TOKENS = ContainerSpec("integrity_tokens", "/id", default_ttl=-1)

# Message gatherer users and their state (Grounded / Identified / Authenticated), id = username.
GATHERER_USERS = ContainerSpec("gatherer_users", "/id")

# audit: the tree state and latest checkpoint (ids "log", "checkpoint"; caches of the
# audit blobs, see shared_code.audit.storage), and the entries per subject (e.g. "device:<id>").
AUDIT_STATE = ContainerSpec("audit_state", "/id")
AUDIT_INDEX = ContainerSpec("audit_index", "/subject")

# Direct uploads: one item per occupied pending-upload slot of a device (id = slot
# number), so MAX_PENDING_UPLOADS_PER_DEVICE holds under concurrency; see shared_code.devices.upload_slots.
UPLOAD_SLOTS = ContainerSpec("upload_slots", "/deviceid", default_ttl=-1)

CONTAINERS: tuple[ContainerSpec, ...] = (
    DEVICES, CHALLENGES, FILES, USERS, SESSIONS, KMS_KEYS, FILE_ACCESS, TOKENS, RATE_LIMITS, OTPS,
    GATHERER_USERS, INTEGRITY_TOKENS,
    AUDIT_STATE, AUDIT_INDEX,  # audit
    UPLOAD_SLOTS,  # direct uploads
)


class AlreadyExists(Exception):
    """A create hit an existing id (HTTP 409 from Cosmos)."""


class EtagMismatch(Exception):
    """A conditional write lost a race: the item changed since it was read (HTTP 412)."""


class InvalidContinuation(Exception):
    """Cosmos rejected a continuation token (HTTP 400)."""


# Ids (Cosmos DB Resource.Id remarks; "Service quotas": at most 1023 bytes): these four characters
# are refused because ids are URL path segments. Ids built from user input must be hashed or
# encoded first (e.g. accounts.users.user_key); every helper below checks, so a slip fails before
# any request instead of as a storage error after other side effects. Partition key values have
# no such characters (they travel in a JSON header) and may be 2048 bytes (partition key v2).
ILLEGAL_ID_CHARACTERS = frozenset("/\\?#")
MAX_ID_BYTES = 1023


def require_legal_id(item_id: str) -> str:
    """``item_id`` if Cosmos DB accepts it as an id, else ``ValueError`` (a bug, never user input)."""
    if not isinstance(item_id, str) or not item_id or ILLEGAL_ID_CHARACTERS.intersection(item_id) \
            or len(item_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise ValueError(f"not a legal Cosmos DB id: {item_id!r:.80}")
    return item_id


_lock = threading.Lock()
_client: CosmosClient | None = None


def get_client() -> CosmosClient:
    """The process-wide :class:`CosmosClient`, created on first use.

    Uses ``COSMOS_KEY`` when set (emulators), otherwise Microsoft Entra ID through
    :func:`shared_code.platform.identity.get_credential`. Timeouts and retries are bounded by
    ``STORAGE_TIMEOUT_SECONDS`` so an outage surfaces as a 503 within seconds.
    """
    global _client
    with _lock:
        if _client is None:
            settings = get_settings()
            credential = settings.cosmos_key or get_credential()
            _client = CosmosClient(
                settings.cosmos_endpoint,
                credential=credential,
                connection_verify=settings.cosmos_verify_tls,
                connection_timeout=settings.storage_timeout_seconds,
                read_timeout=settings.storage_timeout_seconds,
                retry_total=2,
                retry_connect=1,
                retry_read=1,
                retry_backoff_max=2,
                enable_endpoint_discovery=False,
                transport=Urllib3Transport(settings.cosmos_endpoint),
            )
        return _client


def reset_client() -> None:
    """Drop the cached client (tests, after changing settings)."""
    global _client
    with _lock:
        _client = None


def container(spec: ContainerSpec) -> ContainerProxy:
    """A proxy for ``spec`` in the configured database (no network call)."""
    with storage_errors():
        return get_client().get_database_client(get_settings().cosmos_database).get_container_client(spec.name)


@contextlib.contextmanager
def storage_errors(operation: str = "cosmos") -> Iterator[None]:
    """Translate any remaining SDK failure inside the block into :class:`ServiceUnavailable`."""
    try:
        yield
    except CosmosHttpResponseError as exc:
        log.warning("%s failed: status=%s", operation, exc.status_code)
        raise ServiceUnavailable(detail="the database is unavailable, try again later") from exc
    except AzureError as exc:
        log.warning("%s failed: %s", operation, exc.__class__.__name__)
        raise ServiceUnavailable(detail="the database is unavailable, try again later") from exc


def read_item(spec: ContainerSpec, item_id: str, partition_key: str) -> dict[str, Any] | None:
    """Point-read one item; ``None`` when it does not exist."""
    with storage_errors("cosmos read"):
        try:
            return container(spec).read_item(require_legal_id(item_id), partition_key=partition_key)
        except CosmosHttpResponseError as exc:
            if exc.status_code == 404:
                return None
            raise


def create_item(spec: ContainerSpec, body: dict[str, Any]) -> dict[str, Any]:
    """Create ``body``; raises :class:`AlreadyExists` if its id is taken (atomic: never read-then-write)."""
    require_legal_id(body.get("id"))
    with storage_errors("cosmos create"):
        try:
            return container(spec).create_item(body)
        except CosmosHttpResponseError as exc:
            if exc.status_code == 409:
                raise AlreadyExists(body.get("id")) from None
            raise


def upsert_item(spec: ContainerSpec, body: dict[str, Any]) -> dict[str, Any]:
    """Create or replace ``body`` unconditionally."""
    require_legal_id(body.get("id"))
    with storage_errors("cosmos upsert"):
        return container(spec).upsert_item(body)


def replace_item(spec: ContainerSpec, body: dict[str, Any], etag: str) -> dict[str, Any]:
    """Replace ``body`` only if the stored item still has ``etag``; else :class:`EtagMismatch`."""
    with storage_errors("cosmos replace"):
        try:
            return container(spec).replace_item(
                require_legal_id(body["id"]), body, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except CosmosHttpResponseError as exc:
            if exc.status_code in (404, 412):
                raise EtagMismatch(body["id"]) from None
            raise


def delete_item(spec: ContainerSpec, item_id: str, partition_key: str, etag: str | None = None) -> bool:
    """Delete one item; ``True`` if this call deleted it, ``False`` if it was already gone (or,
    with ``etag``, if the stored item no longer has that etag).

    Of several concurrent deletes of one item exactly one returns ``True``, which is what makes
    single-use tokens and challenges safe.
    """
    conditions = {} if etag is None else {"etag": etag, "match_condition": MatchConditions.IfNotModified}
    with storage_errors("cosmos delete"):
        try:
            container(spec).delete_item(require_legal_id(item_id), partition_key=partition_key, **conditions)
            return True
        except CosmosHttpResponseError as exc:
            if exc.status_code in (404, 412):
                return False
            raise


def query_page(
    spec: ContainerSpec,
    query: str,
    parameters: list[dict[str, Any]],
    *,
    partition_key: str | None,
    page_size: int,
    continuation: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Run ``query`` and return one page of at most ``page_size`` items and the next continuation
    token (``None`` on the last page). ``partition_key=None`` queries across partitions.

    Raises :class:`InvalidContinuation` when Cosmos rejects ``continuation`` (HTTP 400).
    """
    with storage_errors("cosmos query"):
        kwargs: dict[str, Any] = {"parameters": parameters, "max_item_count": page_size}
        if partition_key is None:
            kwargs["enable_cross_partition_query"] = True
        else:
            kwargs["partition_key"] = partition_key
        pager = container(spec).query_items(query, **kwargs).by_page(continuation)
        try:
            items = list(next(pager, []))
        except CosmosHttpResponseError as exc:
            if exc.status_code == 400 and continuation:
                raise InvalidContinuation() from None
            raise
        return items, pager.continuation_token


class ConditionFailed(Exception):
    """A conditional patch was refused: its filter predicate did not hold (HTTP 412)."""


def increment_if(spec: ContainerSpec, item_id: str, partition_key: str, field: str, predicate: str,
                 amount: int = 1) -> dict[str, Any] | None:
    """Atomically add ``amount`` (default 1) to the integer ``field`` of one item if ``predicate``
    holds for it.

    One conditional Patch request (``incr`` with a filter predicate such as ``"from c where
    c.count < 10"``): the server evaluates the predicate and applies the increment as one step,
    so concurrent callers never lose an update and never need an etag retry loop. Returns the
    updated item, ``None`` if the item does not exist; raises :class:`ConditionFailed` when the
    predicate is false. cosmosdb-server supports this (it lower-cases the predicate, so keep
    field names lower-case). Azure docs: "Partial document update in Azure Cosmos DB".
    """
    with storage_errors("cosmos patch"):
        try:
            return container(spec).patch_item(
                require_legal_id(item_id), partition_key=partition_key,
                patch_operations=[{"op": "incr", "path": f"/{field}", "value": amount}], filter_predicate=predicate,
            )
        except CosmosHttpResponseError as exc:
            if exc.status_code == 404:
                return None
            if exc.status_code == 412:
                raise ConditionFailed(item_id) from None
            raise


def query_first(spec: ContainerSpec, query: str, parameters: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` results of ``query`` across all partitions (no continuation token).

    Iterates pages until ``limit`` items are collected or the results end, because a
    cross-partition page in Azure may hold fewer items than asked (even none) while more follow.
    Checked on cosmosdb-server: ``enable_cross_partition_query`` with ``WHERE`` filters on string
    fields (``c.expires_at < @now``), projections and paging behave as in Azure. Callers that
    delete what they read should call again rather than resume a continuation, which may be
    positional on the emulator.
    """
    with storage_errors("cosmos query"):
        results = container(spec).query_items(
            query, parameters=parameters, enable_cross_partition_query=True, max_item_count=limit
        )
        return list(itertools.islice(results, limit))
