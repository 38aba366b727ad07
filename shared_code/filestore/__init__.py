"""Secure file store (seed 002): a KMS of per-file RSA key pairs and a store of client-side
encrypted files.

- ``kms``: file keys (RSA pair per file name, the owner's and grantees' access entries, grant and
  revoke, the access check the store uses);
- ``key_wrap``: private keys wrapped under the master key (AES-256-GCM KEK, key id as AAD);
- ``datastore``: the encrypted envelopes in Blob Storage (upload for the key's owner, download
  for owner and grantees, listing);
- ``quota``: at most ``KMS_KEYS_PER_HOUR`` key creations per user.

Users are named by the accounts area's public ``users`` module; the dependency runs one way
(accounts never imports this package). No imports here (cold start).
"""
