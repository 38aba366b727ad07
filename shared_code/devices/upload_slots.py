"""Pending-upload slots: at most ``MAX_PENDING_UPLOADS_PER_DEVICE`` direct-upload grants of one
device are pending at once, also when grants are requested concurrently.

Container ``upload_slots`` (partition ``/deviceid``), one item per occupied slot, id = the slot
number ``"0"`` .. ``"N-1"``::

    {"id": "2", "deviceid", "upload_id", "expires_at": iso (the grant's deadline), "taken_at": iso,
     "ttl": seconds}

A slot is taken by a conditional create (409 = taken), so two grants never share one. A taken
slot counts until it is released (the grant was verified, refused or expired), its deadline
passes (the purge timer then deletes it), or it names a grant that is not pending: such a slot is
taken over with an etag-guarded replace. A slot whose grant does not exist yet counts for
:data:`GRANT_CREATION_GRACE_SECONDS` after it was taken, because the request that took it may
still be creating the grant (its audit entry comes first): taking it over then would let both
grants land. After that (the request died, or its grant write failed) it is taken over. A release
that fails therefore only delays the slot's reuse; it never leaks it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable

from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable, TooManyRequests
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

log = logging.getLogger("trustgate.upload_slots")

RETRY_AFTER_SECONDS = 60
# Longer than a request can take between taking a slot and creating its grant: the HTTP front end
# ends a request after 230 s, the Consumption plan's default function timeout is 5 minutes.
GRANT_CREATION_GRACE_SECONDS = 300


def _slot(deviceid: str, number: int, upload_id: str, deadline: datetime) -> dict[str, Any]:
    ttl = max(int((deadline - utc_now()).total_seconds()), 0) + 3600
    return {"id": str(number), "deviceid": deviceid, "upload_id": upload_id, "expires_at": to_iso(deadline),
            "taken_at": to_iso(utc_now()), "ttl": ttl}


def taken_recently(slot: dict[str, Any]) -> bool:
    """Whether ``slot`` was taken less than :data:`GRANT_CREATION_GRACE_SECONDS` ago (so its
    request may still be creating the grant). Slots of older code (no ``taken_at``): ``False``."""
    taken_at = slot.get("taken_at")
    return taken_at is not None and (utc_now() - from_iso(taken_at)).total_seconds() < GRANT_CREATION_GRACE_SECONDS


def acquire(deviceid: str, upload_id: str, deadline: datetime, still_held: Callable[[dict[str, Any]], bool]) -> int:
    """Take a free slot of ``deviceid`` for grant ``upload_id`` (pending until ``deadline``);
    returns its number. Idempotent: a slot already held by ``upload_id`` is returned as is.

    ``still_held(slot)`` tells whether another holder's slot item still counts (its grant is
    pending, or it does not exist yet and the slot was :func:`taken_recently`). Raises
    :class:`~shared_code.platform.errors.TooManyRequests` ``too_many_pending_uploads`` (429,
    ``Retry-After``) when every slot holds a live pending grant, and ``ServiceUnavailable``.
    A crash after the slot was taken leaves it held by a grant that may not exist: a retry of the
    same request takes it again, and otherwise it is taken over once that grant is found not pending.
    """
    limit = get_settings().max_pending_uploads_per_device
    held: list[dict[str, Any]] = []
    for number in range(limit):
        try:
            cosmos.create_item(cosmos.UPLOAD_SLOTS, _slot(deviceid, number, upload_id, deadline))
            return number
        except cosmos.AlreadyExists:
            pass
        slot = cosmos.read_item(cosmos.UPLOAD_SLOTS, str(number), deviceid)
        if slot is not None and slot.get("upload_id") == upload_id:
            return number
        if slot is not None:
            held.append(slot)
    now = utc_now()
    for slot in held:
        if from_iso(slot["expires_at"]) > now and still_held(slot):
            continue
        try:
            cosmos.replace_item(cosmos.UPLOAD_SLOTS, _slot(deviceid, int(slot["id"]), upload_id, deadline), slot["_etag"])
            return int(slot["id"])
        except cosmos.EtagMismatch:
            continue  # another request took it over first
    raise TooManyRequests(
        "too_many_pending_uploads", f"at most {limit} direct uploads may be pending per device; finish or let one expire",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def release(deviceid: str, number: int, upload_id: str) -> None:
    """Free slot ``number`` of ``deviceid`` if ``upload_id`` still holds it. Never raises for an
    outage (logged): an unreleased slot is taken over once its grant is not pending."""
    try:
        slot = cosmos.read_item(cosmos.UPLOAD_SLOTS, str(number), deviceid)
        if slot is not None and slot.get("upload_id") == upload_id:
            cosmos.delete_item(cosmos.UPLOAD_SLOTS, str(number), deviceid, etag=slot["_etag"])
    except ServiceUnavailable:
        log.warning("could not release upload slot %s of device %s; it is reclaimed later", number, deviceid)
