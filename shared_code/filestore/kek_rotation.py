"""KEK rotation: rewrap stored file keys under the active KEK, and report which KEK wraps how many.

After a new KEK is made active (:mod:`shared_code.filestore.key_wrap`), records under older kids
stay readable but should move, so the old KEK can be retired. The rewrap timer
(``functions/kms.py``, ``%KMS_REWRAP_SCHEDULE%``) calls :func:`rewrap_run`: batches of
``KMS_REWRAP_BATCH_SIZE`` key items whose wrapped keys are under a configured non-active kid, at
most ``KMS_REWRAP_MAX_BATCHES`` per run. Each batch is recorded in the audit log
(``kms_kek_rewrap_batch``) before any of its writes.

Crash safety. Every change is one write per key item: a replace conditional on the etag the batch
read, carrying the item exactly as read except the rewrapped key. So every prefix of a run is safe:
a key item is either still under its old KEK (readable while that KEK is configured) or under the
active one, never half-written; a process dying mid-batch leaves some items moved and the rest for
the next run, which re-queries by kid (no cursor to lose) and continues. A replace that times out
and lands later lands only if nothing changed the item since it was read (a grant, a rotation);
otherwise it is refused and the item is picked up again, so a late rewrap never undoes a newer
write. Rewrapping is idempotent: a rewrapped item no longer matches the query.

Items under a kid the keyring lacks cannot be rewrapped (nothing can read them); they are never
queried for rewrap and are counted by :func:`status` as ``unknown_kek_keys``. An item whose tag does
not verify is logged, skipped for the rest of the run, and reported in ``failed``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from shared_code.audit import trail
from shared_code.filestore import key_versions, key_wrap
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings

log = logging.getLogger("trustgate.kms")

WRAPPED = "wrapped_private_key"
MAX_UNKNOWN_KIDS = 20
# Where a key item holds wrapped private keys (key_versions): the current version at the top level,
# older ones in previous_versions. Counting is per wrapped key (one per key version).
_CURRENT_UNDER = f"ARRAY_CONTAINS(@kids, c.{WRAPPED}.kid)"
_PREVIOUS_UNDER = f"ARRAY_CONTAINS(@kids, v.{WRAPPED}.kid)"
_ANY_UNDER = f"({_CURRENT_UNDER} OR EXISTS(SELECT VALUE v FROM v IN c.{key_versions.PREVIOUS} WHERE {_PREVIOUS_UNDER}))"
_FROM_PREVIOUS = f"FROM c JOIN v IN c.{key_versions.PREVIOUS}"


@dataclass
class RewrapReport:
    """What one :func:`rewrap_run` did: items ``rewrapped``; ``raced`` (changed between read and
    write, left for the next batch or run); ``failed`` key ids whose record does not unwrap;
    ``batches`` run; ``more`` when the run stopped at its batch limit with work left."""

    rewrapped: int = 0
    raced: int = 0
    failed: list[str] = field(default_factory=list)
    batches: int = 0
    more: bool = False


def rewrap_run(batch_size: int | None = None, max_batches: int | None = None) -> RewrapReport:
    """Rewrap, in bounded batches, every key item under a configured non-active KEK.

    ``batch_size`` / ``max_batches`` default to ``KMS_REWRAP_BATCH_SIZE`` / ``KMS_REWRAP_MAX_BATCHES``.
    Raises :class:`~shared_code.platform.config.ConfigError` when the keyring or the audit log is
    not configured and :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB or
    the audit log fails (what was rewrapped before stays rewrapped; the next run continues).
    """
    settings = get_settings()
    batch_size = batch_size or settings.kms_rewrap_batch_size
    max_batches = max_batches or settings.kms_rewrap_max_batches
    ring = key_wrap.keyring()
    report = RewrapReport()
    if not ring.retired_kids:
        return report
    for _ in range(max_batches):
        items = _under_retired_keks(ring, batch_size, report.failed)
        if not items:
            return report
        _rewrap_batch(ring, items, report)
        report.batches += 1
        if len(items) < batch_size:
            return report
    report.more = bool(_under_retired_keks(ring, 1, report.failed))
    return report


def _under_retired_keks(ring: key_wrap.Keyring, limit: int, skip: list[str]) -> list[dict[str, Any]]:
    query = f"SELECT * FROM c WHERE {_ANY_UNDER} AND NOT ARRAY_CONTAINS(@skip, c.id)"
    return cosmos.query_first(cosmos.KMS_KEYS, query, [{"name": "@kids", "value": ring.retired_kids},
                                                      {"name": "@skip", "value": skip}], limit)


def _rewrap_batch(ring: key_wrap.Keyring, items: list[dict[str, Any]], report: RewrapReport) -> None:
    """Audit the batch, then replace each item with its keys rewrapped (one etag-guarded write per
    item; see the module docstring for what a crash or a late write leaves)."""
    from_keks = sorted({v.wrapped_private_key["kid"] for item in items for v in key_versions.versions(item)} - {ring.active.kid})
    trail.record("kms_kek_rewrap_batch", actor=trail.OPERATOR, objects={"to_kek": ring.active.kid, "from_keks": from_keks, "keys": len(items)})
    for item in items:
        try:
            body = _rewrapped(item, ring)
        except key_wrap.KeyUnwrapFailed:
            log.error("kek rewrap: key %s does not unwrap under its KEK; skipped", item["id"])
            report.failed.append(item["id"])
            continue
        try:
            cosmos.replace_item(cosmos.KMS_KEYS, body, item["_etag"])
            report.rewrapped += 1
        except cosmos.EtagMismatch:
            report.raced += 1


def _rewrapped(item: dict[str, Any], ring: key_wrap.Keyring) -> dict[str, Any]:
    """``item`` as read (without system fields) with every wrapped key under a retired KEK rewrapped
    under the active one, each with its version's associated data."""
    body = {name: value for name, value in item.items() if not name.startswith("_")}
    current, *previous = key_versions.versions(item)
    if key_wrap.needs_rewrap(current.wrapped_private_key, ring):
        body[WRAPPED] = key_wrap.rewrap(current.wrapped_private_key, key_versions.wrap_aad(item["id"], current.version), ring)
    if previous:
        body[key_versions.PREVIOUS] = [
            {**old.as_item(), WRAPPED: key_wrap.rewrap(old.wrapped_private_key, key_versions.wrap_aad(item["id"], old.version), ring)}
            if key_wrap.needs_rewrap(old.wrapped_private_key, ring) else old.as_item() for old in previous]
    return body


def status() -> dict[str, Any]:
    """What each KEK still wraps: ``{"active_kek", "keks": [{"kid", "active", "keys",
    "retirable"}], "unknown_kek_keys", "unknown_keks"}``.

    ``keys`` counts the wrapped private keys (one per live key version) under that kid: two
    cross-partition ``COUNT`` queries per kid (current versions, older versions); ``retirable`` is
    true for a non-active kid with none left (remove it from the keyring then);
    ``unknown_kek_keys`` counts wrapped keys under kids the keyring lacks (unreadable: restore that
    KEK), ``unknown_keks`` the kids seen among up to 20 of them. Raises
    :class:`~shared_code.platform.config.ConfigError` and
    :class:`~shared_code.platform.errors.ServiceUnavailable`.
    """
    ring = key_wrap.keyring()
    keks = []
    for kid in ring.kids:
        count = _count(f"FROM c WHERE {_CURRENT_UNDER}", [kid]) + _count(f"{_FROM_PREVIOUS} WHERE {_PREVIOUS_UNDER}", [kid])
        keks.append({"kid": kid, "active": kid == ring.active.kid, "keys": count,
                     "retirable": kid != ring.active.kid and count == 0})
    unknown_current = f"FROM c WHERE IS_DEFINED(c.{WRAPPED}.kid) AND NOT {_CURRENT_UNDER}"
    unknown_previous = f"{_FROM_PREVIOUS} WHERE IS_DEFINED(v.{WRAPPED}.kid) AND NOT {_PREVIOUS_UNDER}"
    parameters = [{"name": "@kids", "value": ring.kids}]
    seen = (cosmos.query_first(cosmos.KMS_KEYS, f"SELECT VALUE c.{WRAPPED}.kid {unknown_current}", parameters, MAX_UNKNOWN_KIDS)
            + cosmos.query_first(cosmos.KMS_KEYS, f"SELECT VALUE v.{WRAPPED}.kid {unknown_previous}", parameters, MAX_UNKNOWN_KIDS))
    return {"active_kek": ring.active.kid, "keks": keks,
            "unknown_kek_keys": _count(unknown_current, ring.kids) + _count(unknown_previous, ring.kids),
            "unknown_keks": sorted(set(seen))}


def _count(source: str, kids: list[str]) -> int:
    """``SELECT VALUE COUNT(1) <source>`` with ``@kids`` bound to ``kids``."""
    result = cosmos.query_first(cosmos.KMS_KEYS, f"SELECT VALUE COUNT(1) {source}", [{"name": "@kids", "value": kids}], 1)
    return int(result[0]) if result else 0
