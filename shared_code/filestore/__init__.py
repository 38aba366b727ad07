"""Secure file store (seed 002): a KMS of per-file RSA key pairs and a store of client-side
encrypted files.

- ``kms``: file keys (RSA pair per file name, the owner's and grantees' access entries, grant and
  revoke, the access check the store uses);
- ``key_wrap``: private keys wrapped under a KEK (AES-256-GCM, key id as AAD), the keyring of KEK
  versions (``KMS_MASTER_KEYS``, ``KMS_ACTIVE_KEK``);
- ``kek_rotation``: the rewrap timer's batches and the per-KEK counts of ``GET /kms/status``;
- ``key_versions``: how a key item holds the versions of a file key (no I/O);
- ``key_service``: the service-grade operations: unwrap a data key inside the KMS, the private-key
  export switch, rotate a file key, retire old versions;
- ``data_keys``: RSA-OAEP decryption of a data key with one answer for every failure;
- ``datastore``: the encrypted envelopes in Blob Storage (upload for the key's owner, conditional
  replace after a rotation, download for owner and grantees, listing);
- ``quota``: at most ``KMS_KEYS_PER_HOUR`` key creations per user.

Users are named by the accounts area's public ``users`` module; the dependency runs one way
(accounts never imports this package). No imports here (cold start).
"""
