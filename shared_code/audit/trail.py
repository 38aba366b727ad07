"""The audit trail's one entry point for the areas: :func:`record` a trust decision.

The rule: **no unlogged trust decisions.** A handler records its decision in the same request,
*before* the decision takes effect, and lets a failure propagate::

    trail.record("token_issued", actor=trail.OPERATOR, objects={"token_ref": ref}, client_address=ip)
    cosmos.create_item(...)          # the effect, only after the entry is durable

If the log write fails, :func:`record` raises :class:`~shared_code.platform.errors.ServiceUnavailable`
(503) and the effect is never attempted. So every effect has its entry; an entry whose effect then
failed (the next storage call was refused, the process died) records a decision that was made but
did not take effect, which the object's own state shows (the token or device does not exist).

The events, their call sites and what each records are listed in the README ("Audit log"). A
refusal that repeats per request (a throttled client, a denied address) is recorded once per
client and window (``shared_code.platform.rate_limit.once_per_window``), never per request.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Mapping, Sequence

import rfc8785

from shared_code.audit import checkpoints, sequencer
from shared_code.audit.entries import build_entry, salted_digest
from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.request_context import current_request_id
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.audit")

OPERATOR = "operator"
GRANTED = "granted"
REFUSED = "refused"


def device_actor(deviceid: str) -> str:
    """The actor of a device's own request: ``device:<deviceid>``."""
    return f"device:{deviceid}"


def user_actor(email: str) -> str:
    """The actor of a user's request: ``user:<salted digest of the normalised email>``."""
    return f"user:{salted_digest(email)}"


def evidence_digest(data: bytes, verifier: str, policy: Mapping[str, Any]) -> dict[str, str]:
    """The evidence member of an entry: SHA-256 of the raw ``data`` (an attestation chain, an
    integrity token), the ``verifier`` name/version that judged it and the SHA-256 of the policy
    in force (its RFC 8785 canonical JSON), never the evidence itself."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "verifier": verifier,
            "policy": hashlib.sha256(rfc8785.dumps(dict(policy))).hexdigest()}


def record_lockout(*, endpoint: str, limit: str, account: str | None = None, client_address: str | None = None) -> None:
    """Record ``login_locked_out``: a password-guessing throttle
    (:mod:`shared_code.platform.login_throttle`) refuses ``account`` (a normalised email or a
    gatherer username: the actor, as a salted digest) or ``client_address`` (``limit`` ``"account"``
    / ``"client"``) on ``endpoint`` for the rest of its window. The areas pass this function as the
    throttle's ``on_lockout``, which calls it once per window. Raises like :func:`record`."""
    record("login_locked_out", actor=user_actor(account) if account is not None else OPERATOR,
           objects={"endpoint": endpoint, "limit": limit}, outcome=REFUSED, failed_checks=["rate_limited"],
           client_address=client_address)


def record(
    event: str,
    *,
    actor: str,
    objects: Mapping[str, Any],
    outcome: str = GRANTED,
    failed_checks: Sequence[str] = (),
    evidence: Mapping[str, str] | None = None,
    client_address: str | None = None,
) -> int:
    """Append one entry for a decision about to take effect; returns its ``seq`` (leaf index).

    ``event`` snake_case (``device_registered``); ``actor`` :data:`OPERATOR`,
    :func:`device_actor` or :func:`user_actor`; ``objects`` the ids the decision is about
    (``{"device": id}``, ``{"token_ref": ref}``; short text, numbers, booleans: never a secret);
    ``outcome`` ``granted`` or ``refused`` with the names of the ``failed_checks``; ``evidence``
    from :func:`evidence_digest`; ``client_address`` the caller's IP address (stored only as a salted
    digest). The entry also gets ``ts`` and the request id of the handler it runs in.

    Returns once the entry is durable. Raises :class:`ServiceUnavailable` when it could not be
    stored (the caller must then not apply the decision), :class:`ConfigError` when ``AUDIT_SALT``
    is missing, :class:`~shared_code.audit.entries.InvalidEntry` for malformed fields (a bug).
    """
    fields = dict(ts=to_iso(utc_now()), event=event, actor=actor, objects=objects, outcome=outcome,
                  failed_checks=failed_checks, request_id=current_request_id(),
                  client=salted_digest(client_address) if client_address else None, evidence=evidence)
    build_entry(seq=0, **fields)  # validate before anything is written
    seq = sequencer.append(lambda n: build_entry(seq=n, **fields))
    if (seq + 1) % get_settings().audit_checkpoint_entries == 0:
        _checkpoint_now(seq)
    return seq


def _checkpoint_now(seq: int) -> None:
    """Every N-th entry signs a checkpoint in its own request; the entry is already durable, so a
    failure here only delays the checkpoint to the timer's next run."""
    try:
        checkpoints.publish()
    except (ServiceUnavailable, ConfigError) as exc:
        log.warning("checkpoint after audit entry %d deferred to the timer: %s", seq, exc)
