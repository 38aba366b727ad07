"""Deleting expired items from every expiring container (the backstop to Cosmos TTL).

Generic over :data:`shared_code.platform.cosmos.CONTAINERS`: every container declared with a
``default_ttl`` follows the expiring-state convention (items carry ``expires_at`` as
:func:`~shared_code.platform.timeutil.to_iso` text, which sorts lexically), so a container added by any
area is purged without changes here. On Azure, TTL removes items natively and this finds little;
on cosmosdb-server (no TTL) it is the only mechanism.

Deletion is by whole items, in batches of :data:`BATCH_SIZE` (each batch re-queries from the
start, so deleting never skips items behind a continuation), at most :data:`MAX_BATCHES` per
container and run. Each delete is conditional on the etag the query returned, so it removes only
the item that was read: an id reused meanwhile (a new login code ``login:<email hash>`` mailed
between the query and the delete) keeps its new item. A run that stops part-way (timeout, outage) leaves
only whole, still-expired items, which readers already treat as gone and the next run deletes; a
delete that times out and lands later still removes only the expired item it was meant for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from shared_code.platform import cosmos
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.purge")

BATCH_SIZE = 100
MAX_BATCHES = 20


@dataclass
class PurgeReport:
    """Items deleted per container name; ``failed`` names containers whose purge hit an outage;
    ``more`` names those that still had expired items after :data:`MAX_BATCHES`."""

    deleted: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    more: list[str] = field(default_factory=list)


def expiring_containers() -> list[cosmos.ContainerSpec]:
    """The containers holding expiring state: those declared with a ``default_ttl``."""
    return [spec for spec in cosmos.CONTAINERS if spec.default_ttl is not None]


def _partition_field(spec: cosmos.ContainerSpec) -> str:
    path = spec.partition_key.strip("/")
    if "/" in path:
        raise ValueError(f"container {spec.name}: nested partition key paths are not supported")
    return path


def purge_container(spec: cosmos.ContainerSpec, now: datetime, batch_size: int = BATCH_SIZE,
                    max_batches: int = MAX_BATCHES) -> tuple[int, bool]:
    """Delete the items of ``spec`` whose ``expires_at`` is before ``now``.

    Returns ``(items deleted, whether expired items may remain)``. Items without ``expires_at``
    are never touched, nor items changed since the query read them (etag condition). Raises :class:`~shared_code.platform.errors.ServiceUnavailable` on an outage
    (items deleted before it stay deleted).
    """
    pk = _partition_field(spec)
    fields = "c.id, c._etag" if pk == "id" else f"c.id, c._etag, c.{pk}"
    query = f"SELECT {fields} FROM c WHERE c.expires_at < @now"
    parameters = [{"name": "@now", "value": to_iso(now)}]
    deleted = 0
    for _ in range(max_batches):
        batch = cosmos.query_first(spec, query, parameters, batch_size)
        for item in batch:
            deleted += cosmos.delete_item(spec, item["id"], item.get(pk), etag=item["_etag"])
        if len(batch) < batch_size:
            return deleted, False
    return deleted, True


def purge_expired() -> PurgeReport:
    """Purge every expiring container once, logging the count per container.

    An outage in one container is logged and the others are still purged; the report says
    which failed.
    """
    now = utc_now()
    report = PurgeReport()
    for spec in expiring_containers():
        try:
            count, more = purge_container(spec, now)
        except ServiceUnavailable:
            log.error("purge %s: storage unavailable, the next run continues", spec.name)
            report.failed.append(spec.name)
            continue
        report.deleted[spec.name] = count
        if more:
            report.more.append(spec.name)
        log.info("purge %s: deleted %d expired item(s)%s", spec.name, count, " (more remain)" if more else "")
    return report
