"""Message gatherer (seed 003): IDENTIFY → AUTHENTICATE → MESSAGE, in strict order.

- ``protocol``: the per-user state machine (Grounded → Identified → Authenticated) in Cosmos
  DB, etag-guarded transitions, message validation;
- ``access_tokens``: the HS256 JWT access tokens (PyJWT) with their pinned claims;
- ``message_log``: the messages, one JSON line each, in per-user append blobs.

No imports here (cold start).
"""
