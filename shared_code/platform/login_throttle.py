"""Throttling of password guessing (OWASP Authentication Cheat Sheet, "Protect against automated
attacks"; NIST SP 800-63B §5.2.2 "Rate Limiting (Throttling)"), for every area that checks
passwords (accounts' ``/login``, the gatherer's ``/authenticate``).

Two fixed-window limits, counted in Cosmos DB by :mod:`shared_code.platform.rate_limit` so every
instance of the app shares them:

- per client address (``X-Forwarded-For`` as far as ``TRUSTED_PROXY_HOPS`` allows; IPv6 per
  ``RATE_LIMIT_IPV6_PREFIX`` network) and endpoint:
  ``LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE`` requests on ``/register``, ``/login``, ``/identify`` and
  ``/authenticate`` (IDENTIFY is credential-free, so it is limited like the password endpoints);
- per account: ``LOGIN_RATE_LIMIT_PER_MINUTE`` password attempts, keyed by the normalised email
  on ``/login`` and the username on ``/authenticate``. Every attempt is counted *before* the
  password is checked (atomically, so concurrent guesses cannot race past the limit), and over the
  limit the answer is 429 whether the password is right or wrong (no oracle) and whether the
  account exists or not (no enumeration). The window is one minute and nothing else is kept: an
  attacker can hold a victim's account shut only while he keeps guessing, never for longer.

A refusal raises :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` (429 with
``Retry-After``) before anything is read or stored, and logs a ``rate_limited`` security event
naming the limit; accounts appear there only as
:func:`~shared_code.platform.security_log.subject_ref`. A caller may pass ``on_lockout`` (the
areas pass :func:`shared_code.audit.trail.record_lockout`; platform imports no area): it is called
with ``endpoint``, ``limit`` (``"client"`` / ``"account"``) and ``client_address`` or ``account``
before the 429, once per limit, key and window, and an exception of it (the audit log is down:
503) replaces the 429.
"""

from __future__ import annotations

from typing import Callable, Mapping

from shared_code.platform import rate_limit
from shared_code.platform.client_address import caller_label, rate_limit_key
from shared_code.platform.config import get_settings
from shared_code.platform.security_log import subject_ref

MINUTE = 60

LockoutHook = Callable[..., None]
"""``on_lockout(*, endpoint, limit, client_address=None, account=None)``."""


def admit_client(headers: Mapping[str, str], endpoint: str, on_lockout: LockoutHook | None = None) -> str:
    """Count a request to ``endpoint`` (``"login"``, ``"register"``, ``"identify"``, ``"authenticate"``) from the
    client address in ``headers``; returns the address label (``"unknown"`` when it cannot be
    determined, which all such requests share). Raises ``rate_limited`` (429) over
    ``LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE`` (after ``on_lockout``, once a window), ``ServiceUnavailable``
    when Cosmos DB (or ``on_lockout``) fails."""
    settings = get_settings()
    client = caller_label(headers)
    limit = settings.login_client_rate_limit_per_minute
    rate_limit.enforce(f"{endpoint}_client", rate_limit_key(client, settings.rate_limit_ipv6_prefix), limit, MINUTE,
                       f"at most {limit} requests a minute from one address",
                       on_refusal=None if on_lockout is None else lambda: on_lockout(endpoint=endpoint, limit="client", client_address=client),
                       limit_kind="client", client=client, endpoint=endpoint)
    return client


def admit_attempt(endpoint: str, account: str, on_lockout: LockoutHook | None = None) -> None:
    """Count a password attempt on ``account`` (normalised email or username, known or not) at
    ``endpoint``. Raises ``rate_limited`` (429) over ``LOGIN_RATE_LIMIT_PER_MINUTE`` (after
    ``on_lockout``, once a window), ``ServiceUnavailable`` when Cosmos DB (or ``on_lockout``) fails."""
    limit = get_settings().login_rate_limit_per_minute
    rate_limit.enforce(f"{endpoint}_account", account, limit, MINUTE,
                       f"at most {limit} attempts a minute for one account: wait and try again",
                       on_refusal=None if on_lockout is None else lambda: on_lockout(endpoint=endpoint, limit="account", account=account),
                       limit_kind="account", endpoint=endpoint, account_ref=subject_ref(account))
