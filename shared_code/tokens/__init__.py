"""Token service (seed 004): expiring, optionally one-time bearer tokens, stored only as hashes.

- ``bearer_tokens``: issue, verify (one-time tokens consumed exactly once), revoke (RFC 7009);
- ``access``: who may call the token endpoints (IP allow/deny lists, per-client rate limits,
  verify-failure bursts as security events).

Expired tokens are removed by the platform's purge timer (``platform.purge``). No imports here
(cold start).
"""
