"""Who may call the token endpoints: IP allow/deny lists, per-address rate limits, and the
burst detector for failed verifications. Every refusal is logged as a security event; the audit
log (:mod:`shared_code.audit.trail`) records ``ip_forbidden`` and ``rate_limited`` once per client
address (IPv6: network) and window, and ``verify_failure_burst`` once per window
(:func:`shared_code.platform.rate_limit.once_per_window`): the first refusal of a window answers
503 instead when its entry cannot be written, and the next one tries again.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

from shared_code.audit import trail
from shared_code.platform import rate_limit
from shared_code.platform.client_address import address_label, client_address, is_allowed, rate_limit_key
from shared_code.platform.config import get_settings
from shared_code.platform.errors import Forbidden
from shared_code.platform.security_log import security_event

WINDOW_SECONDS = 60
FAILURE_BUCKET = "verify_failures"


def admit(headers: Mapping[str, str], endpoint: str, *, rate_limited: bool = True) -> str:
    """Let a request to ``endpoint`` (e.g. ``"verify_token"``) through, or refuse it.

    Checks ``TOKEN_IP_DENY``/``TOKEN_IP_ALLOW`` against the client address from
    ``X-Forwarded-For`` (``TRUSTED_PROXY_HOPS``), then counts the request against
    ``TOKEN_RATE_LIMIT_PER_MINUTE`` for that address (IPv6: its ``RATE_LIMIT_IPV6_PREFIX``
    network) and endpoint, through a leased counter (:func:`shared_code.platform.rate_limit.hit`:
    never more than the limit across instances; one Cosmos write per ``RATE_LIMIT_LEASE_UNITS``
    requests). Returns the address label
    (``"unknown"`` when it cannot be determined) for logging. Raises :class:`Forbidden`
    ``ip_forbidden`` (403), :class:`TooManyRequests` ``rate_limited`` (429, ``Retry-After`` in
    seconds), or :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    settings = get_settings()
    address = client_address(headers, settings.trusted_proxy_hops)
    client = address_label(address)
    key = rate_limit_key(client, settings.rate_limit_ipv6_prefix)
    if not is_allowed(address, settings.token_ip_allow, settings.token_ip_deny):
        security_event("ip_forbidden", level=logging.WARNING, client=client, endpoint=endpoint)
        rate_limit.once_per_window("ip_forbidden", key, WINDOW_SECONDS, _refusal("ip_forbidden", client, endpoint))
        raise Forbidden("ip_forbidden", "this client address may not call the token endpoints")
    if rate_limited:
        limit = settings.token_rate_limit_per_minute
        rate_limit.enforce(endpoint, key, limit, WINDOW_SECONDS, f"at most {limit} requests a minute",
                           lease=rate_limit.lease_units(limit), on_refusal=_refusal("rate_limited", client, endpoint),
                           client=client, endpoint=endpoint)
    return client


def _refusal(event: str, client: str, endpoint: str, **objects: int) -> Callable[[], None]:
    """The audit entry of a refusal of ``client`` (a salted digest in the entry), run once a window."""
    return lambda: trail.record(event, actor=trail.OPERATOR, client_address=client, outcome=trail.REFUSED,
                                failed_checks=[event], objects={"endpoint": endpoint, **objects})


def record_failed_verification(client: str, endpoint: str) -> None:
    """Count a failed verification from ``client`` on ``endpoint`` (``"verify_token"``,
    ``"introspect"``: one count for both); log and audit ``verify_failure_burst`` (naming the
    endpoint of the failure that made it) once per window when the count reaches
    ``TOKEN_VERIFY_FAILURE_BURST`` (token guessing or a broken client). Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB or, for
    the failure that makes the burst, the audit log is down."""
    settings = get_settings()
    threshold = settings.token_verify_failure_burst
    key = rate_limit_key(client, settings.rate_limit_ipv6_prefix)
    decision = rate_limit.hit(FAILURE_BUCKET, key, threshold, WINDOW_SECONDS)
    if decision.allowed and decision.count < threshold:
        return
    audit = _refusal("verify_failure_burst", client, endpoint, failures=threshold, window_seconds=WINDOW_SECONDS)

    def burst() -> None:
        audit()
        security_event("verify_failure_burst", level=logging.WARNING, client=client, endpoint=endpoint, failures=threshold,
                       window_seconds=WINDOW_SECONDS)

    rate_limit.once_per_window(FAILURE_BUCKET, key, WINDOW_SECONDS, burst)
