"""TrustGate shared code: one package per area on top of ``platform``.

- ``platform``: settings, HTTP helpers, errors, crypto, Cosmos/Blob access, security building
  blocks shared by every area;
- ``devices``: device registry, challenges, signed uploads, Play Integrity (``devices.integrity``);
- ``accounts``: users, passwords, emailed one-time codes, sessions;
- ``filestore``: the KMS of per-file keys and the store of client-side-encrypted files;
- ``gatherer``: the message gatherer's protocol, JWTs and message log;
- ``tokens``: the bearer-token service.

Handlers in ``functions/`` stay thin and call into these packages.
"""
