"""Blob triggers: poll a container for new or changed blobs and invoke the function once per version.

Whatever the trigger's ``source`` (``EventGrid`` in Azure), the devhost polls: every
``DEVHOST_BLOB_POLL_SECONDS`` (default 2) it lists the container and invokes the function for each
blob whose current ETag has no receipt yet. The trigger argument is what the function's annotation
asks for, as the Python worker gives it: ``bytes``, ``str`` or :class:`azure.functions.InputStream`
(the blob downloaded), or an SDK type of ``azurefunctions-extensions-bindings-blob`` (``BlobClient``,
``ContainerClient``, ``StorageStreamDownloader``: a client for the blob, nothing downloaded first). Receipts are empty blobs, as the Functions host writes
them, in container ``azure-webjobs-hosts`` of the same account:
``blobreceipts/{hostId}/{functionName}/{etag}/{container}/{blobName}``. So an overwritten blob (new
ETag) triggers again, an unchanged one never does, also across devhost restarts on a persistent
Azurite. A failing invocation is tried again on the next polls, ``MAX_ATTEMPTS`` (5, the host's
``maxDequeueCount``) times in all, then given up with an error log and a receipt marked failed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import socket
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import azure.functions as func
from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobProperties, BlobServiceClient, ContainerClient, StorageStreamDownloader

from devhost.invoke import BoundFunction, Invoker
from devhost.settings import SettingError, get_setting, resolve_placeholders

log = logging.getLogger("devhost")

RECEIPTS_CONTAINER = "azure-webjobs-hosts"
MAX_ATTEMPTS = 5


class BlobPathError(ValueError):
    """A blob trigger ``path`` cannot be used; the message quotes it."""


@dataclass(frozen=True)
class BlobPath:
    """``container/prefix{name}suffix``: which blobs of ``container`` a trigger fires for."""

    container: str
    prefix: str
    pattern: re.Pattern[str]

    def match(self, blob_name: str) -> dict[str, str] | None:
        """The values of the path's ``{parameters}`` if ``blob_name`` matches, else ``None``."""
        found = self.pattern.fullmatch(blob_name)
        return found.groupdict() if found else None


def parse_blob_path(path: str) -> BlobPath:
    """Parse a trigger path such as ``samples/{name}``, ``%CONTAINER%/in/{name}.json``.

    Each ``{parameter}`` matches one or more characters, slashes included (virtual folders).
    Raises :class:`BlobPathError` when the container part is empty or not literal, and
    :class:`devhost.settings.SettingError` for an unset ``%SETTING%``.
    """
    text = resolve_placeholders(path).strip().strip("/")
    container, _, rest = text.partition("/")
    if not container or "{" in container:
        raise BlobPathError(f"blob path {path!r}: must start with a literal container name")
    leftover = re.sub(r"\{[^{}]+\}", "", rest)
    if "{" in leftover or "}" in leftover:
        raise BlobPathError(f"blob path {path!r}: unbalanced or empty braces")
    pieces, names = [], set()
    for literal, name in re.findall(r"([^{}]*)(?:\{([^{}]*)\})?", rest):
        pieces.append(re.escape(literal))
        if name:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in names:
                raise BlobPathError(f"blob path {path!r}: bad or repeated parameter {{{name}}}")
            names.add(name)
            pieces.append(f"(?P<{name}>.+)")
    if not rest:
        pieces.append(".+")
    return BlobPath(container=container, prefix=rest.split("{", 1)[0], pattern=re.compile("".join(pieces), re.DOTALL))


def blob_service_client(connection: str) -> BlobServiceClient:
    """A client for the account a trigger's ``connection`` names, as the host resolves it:
    setting ``<connection>`` holds a connection string (the SDK reads ``UseDevelopmentStorage=true``
    as Azurite on port 10000), else ``<connection>__blobServiceUri`` (or ``__serviceUri``) holds
    the blob endpoint URL and the identity comes from ``DefaultAzureCredential``
    (``<connection>__clientId`` picks a user-assigned identity). An empty ``connection`` means ``AzureWebJobsStorage``.

    Raises :class:`devhost.settings.SettingError` when none of these settings is set.
    """
    name = connection or "AzureWebJobsStorage"
    options: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 60, "retry_total": 1}
    connection_string = get_setting(name)
    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string, **options)
    url = get_setting(f"{name}__blobServiceUri") or get_setting(f"{name}__serviceUri")
    if url:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=get_setting(f"{name}__clientId"))
        return BlobServiceClient(url, credential=credential, **options)
    raise SettingError(name, f"is not set: give a connection string, or the blob endpoint URL in {name}__blobServiceUri")


def default_host_id() -> str:
    """``AzureFunctionsWebHost__hostid`` or ``devhost-<machine name>`` (lower case, ≤ 32 chars)."""
    configured = get_setting("AzureFunctionsWebHost__hostid")
    raw = configured or f"devhost-{socket.gethostname()}"
    return re.sub(r"[^a-z0-9-]", "-", raw.lower())[:32].strip("-")


def _etag(properties: BlobProperties) -> str:
    return str(properties.etag).strip('"')


def _blob_properties(properties: BlobProperties) -> dict[str, Any]:
    settings = properties.content_settings
    return {
        "BlobType": str(getattr(properties.blob_type, "value", properties.blob_type)),
        "ContentType": settings.content_type,
        "ContentEncoding": settings.content_encoding,
        "ContentMD5": base64.b64encode(settings.content_md5).decode() if settings.content_md5 else None,
        "ETag": properties.etag,
        "LastModified": properties.last_modified.isoformat() if properties.last_modified else None,
        "Created": properties.creation_time.isoformat() if properties.creation_time else None,
        "Length": properties.size,
    }


class BlobWatcher:
    """Polls the container of one blob-triggered function."""

    def __init__(self, bound: BoundFunction, invoker: Invoker, *, host_id: str, poll_seconds: float) -> None:
        """Resolves path and connection now: raises :class:`BlobPathError` or
        :class:`devhost.settings.SettingError` at start-up, not on the first poll."""
        self.bound = bound
        self.invoker = invoker
        self.host_id = host_id
        self.poll_seconds = poll_seconds
        self.path = parse_blob_path(bound.trigger.path)
        service = blob_service_client(bound.trigger.connection)
        self.container = service.get_container_client(self.path.container)
        self.receipts = service.get_container_client(RECEIPTS_CONTAINER)
        self._done: set[tuple[str, str]] = set()
        self._attempts: dict[tuple[str, str], int] = {}
        self._failing = False

    def receipt_name(self, blob_name: str, etag: str) -> str:
        """The receipt blob of one version of ``blob_name``."""
        return f"blobreceipts/{self.host_id}/{self.bound.name}/{etag}/{self.path.container}/{blob_name}"

    async def run(self) -> None:
        """Poll until cancelled (an invocation in progress is finished first)."""
        while True:
            await self.poll_once()
            await asyncio.sleep(self.poll_seconds)

    async def poll_once(self) -> int:
        """One scan: invoke the function for each new or changed blob. Returns how many
        invocations were made. Storage errors are logged (once per outage), never raised."""
        try:
            pending = await anyio.to_thread.run_sync(self._pending)
        except ResourceNotFoundError:
            return 0  # the container does not exist (yet): nothing to do
        except AzureError as exc:
            if not self._failing:
                log.warning("%s [blob] cannot list %s: %s", self.bound.name, self.path.container, exc.__class__.__name__)
            self._failing = True
            return 0
        if self._failing:
            log.info("%s [blob] %s is reachable again", self.bound.name, self.path.container)
            self._failing = False
        count = 0
        for properties in pending:
            count += await self._process(properties)
        return count

    def _pending(self) -> list[BlobProperties]:
        """Blobs matching the path whose current version has no receipt (blocking I/O)."""
        pending = []
        for properties in self.container.list_blobs(name_starts_with=self.path.prefix or None):
            key = (properties.name, _etag(properties))
            if key in self._done or self.path.match(properties.name) is None:
                continue
            if self.receipts.get_blob_client(self.receipt_name(*key)).exists():
                self._done.add(key)
                continue
            pending.append(properties)
        return pending

    def _download(self, properties: BlobProperties) -> tuple[bytes, BlobProperties, str]:
        client = self.container.get_blob_client(properties.name)
        downloader = client.download_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
        return downloader.readall(), downloader.properties, client.url

    def _write_receipt(self, name: str, etag: str, outcome: str) -> None:
        client = self.receipts.get_blob_client(self.receipt_name(name, etag))
        try:
            client.upload_blob(b"", overwrite=True, metadata={"outcome": outcome})
        except ResourceNotFoundError:
            try:
                self.receipts.create_container()
            except ResourceExistsError:
                pass
            client.upload_blob(b"", overwrite=True, metadata={"outcome": outcome})

    def _argument(self, data: bytes, properties: BlobProperties, uri: str) -> Any:
        annotation = self.bound.binding_annotation
        if annotation is bytes:
            return data
        if annotation is str:
            return data.decode("utf-8")
        return func.blob.InputStream(
            data=data, name=f"{self.path.container}/{properties.name}", uri=uri, length=properties.size,
            blob_properties=_blob_properties(properties), metadata=dict(properties.metadata or {}),
        )

    def _sdk_argument(self, listed: BlobProperties) -> Any:
        """The SDK-type argument (never downloads first, except what a StorageStreamDownloader's
        first request reads), or ``None`` when the annotation is not an SDK type."""
        annotation = self.bound.binding_annotation
        if not isinstance(annotation, type):
            return None
        if issubclass(annotation, BlobClient):
            return self.container.get_blob_client(listed.name)
        if issubclass(annotation, ContainerClient):
            return self.container
        if issubclass(annotation, StorageStreamDownloader):
            return self.container.get_blob_client(listed.name).download_blob(
                etag=listed.etag, match_condition=MatchConditions.IfNotModified)
        return None

    async def _process(self, listed: BlobProperties) -> int:
        name, etag = listed.name, _etag(listed)
        key = (name, etag)
        try:
            argument = await anyio.to_thread.run_sync(self._sdk_argument, listed)
            if argument is None:
                data, properties, uri = await anyio.to_thread.run_sync(self._download, listed)
                argument = self._argument(data, properties, uri)
        except (ResourceNotFoundError, ResourceModifiedError):
            return 0  # deleted or changed since listing: the next poll sees its new state
        except AzureError as exc:
            log.warning("%s [blob] cannot read %s/%s: %s", self.bound.name, self.path.container, name, exc.__class__.__name__)
            return 0
        attempt = self._attempts.get(key, 0) + 1
        blob = f"{self.path.container}/{name}"
        record = await self.invoker.invoke(
            self.bound, argument, summary=f"{blob}, attempt {attempt}/{MAX_ATTEMPTS}",
            blob=blob, etag=etag, attempt=attempt,
        )
        if record.status == "failed" and attempt < MAX_ATTEMPTS:
            self._attempts[key] = attempt
            return 1
        self._attempts.pop(key, None)
        self._done.add(key)
        outcome = "succeeded" if record.status == "succeeded" else "failed"
        if outcome == "failed":
            log.error("%s [blob] gave up on %s (etag %s) after %d failed attempts", self.bound.name, blob, etag, attempt)
        try:
            await anyio.to_thread.run_sync(self._write_receipt, name, etag, outcome)
        except AzureError as exc:
            log.warning("%s [blob] cannot write the receipt for %s: %s", self.bound.name, blob, exc.__class__.__name__)
        return 1
