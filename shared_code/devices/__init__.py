"""Devices (seed 000): the devices that prove who they are and upload files.

- ``registry``: registration (device token kept as an HMAC), authentication of device calls,
  attestation of the device key, the record's public view;
- ``challenges``: single-use challenges bound to one device (issue, consume);
- ``files``: signed uploads (blob + file record), the blob trigger's digest check, listing;
- ``direct_uploads``: direct-to-blob upload grants (signed request → create+write SAS for one staging blob), state, renew;
- ``upload_slots``: the per-device limit of pending direct uploads;
- ``upload_verifier``: the staging trigger's check (size, SHA-256, server-side copy, verdict) and the expiry sweep;
- ``gates``: what a device must have proved before an upload is accepted (attested key,
  ``MIN_DEVICE_TRUST``, Play Integrity);
- ``proofs``: the one check of a device's proof (signature) over a request's client data;
- ``integrity/``: Google Play Integrity verdicts (decoders, policy checks, replay records, the
  upload gate);
- ``attestation/``: hardware-backed key attestation (Android Key Attestation, Apple App Attest):
  the verifier, App Attest assertions, the revocation status list and its sweep.

No imports here: importing one module loads only its own dependencies (cold start).
"""
