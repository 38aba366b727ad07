"""Hardware-backed device attestation (Android Key Attestation, Apple App Attest).

Modelled on Google's verifier (``android/keyattestation``): one entry point, constraints as data,
an injectable clock, typed results naming every failed check.

- ``verifier``: the entry point (:func:`verify_evidence`), evidence shapes and the configuration
  built from settings;
- ``results``: check names and the typed :class:`Verification` result;
- ``asn1_walk``: a schema-free DER/BER TLV walk on asn1crypto's parser;
- ``key_description``: the Android KeyDescription extension, tag by tag;
- ``android``: Android chain checks and KeyDescription constraints;
- ``apple``: App Attest attestation objects and assertions;
- ``roots``: pinned Google and Apple roots, ``ATTESTATION_TEST_ROOTS``;
- ``status_list``: Google's attestation status (revocation) list, cached with a staleness budget;
- ``enrollment``: ``POST /attest-device`` for the hardware formats (verify, bind, store evidence);
- ``assertions``: App Attest request proofs with the counter stored by etag compare-and-swap;
- ``sweep``: the timer re-checking stored chains against a fresh status list;
- ``__main__``: ``python -m shared_code.devices.attestation inspect``, the offline operator tool.

No imports here: importing one module loads only its own dependencies (cold start).
"""
