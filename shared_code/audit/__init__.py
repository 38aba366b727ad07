"""Audit log: every trust decision recorded in a tamper-evident, verifiable Merkle log (RFC 9162).

- ``trail``: the one call areas make, ``trail.record(event, actor=..., objects=..., ...)``, before a
  decision takes effect (public contract for other areas); actor and subject helpers (salted
  digests of emails and addresses);
- ``entries``: the canonical entry (RFC 8785 JCS), its fields and limits, the length-prefixed record;
- ``merkle``: RFC 6962 / RFC 9162 hashing, the compact range, inclusion and consistency proofs;
- ``sequencer``: the append (Append Blob position condition, re-read and retry) and the fold of
  new records into the tree state (Cosmos item, etag), with the crash-safety contract;
- ``storage``: the blobs (log segments, hash tiles, checkpoint segments) and the state items;
- ``proofs``: node hashes from tiles, proofs at any size, entries by index, a device's entries;
- ``checkpoints``: C2SP tlog-checkpoint signed notes (Ed25519), publishing and reading them.

Other areas may import only the modules in ``PUBLIC_MODULES`` (a test checks this). No imports
here (cold start).
"""

PUBLIC_MODULES = ("trail",)
