"""Play Integrity verdicts for devices (seed 000 ``POST /verify``).

- ``decode``: token shape and the mode switch (``PLAY_INTEGRITY_MODE``);
- ``google_decoder``: Google's decodeIntegrityToken through a service account (google-auth);
- ``local_decoder``: the app's own response keys (JWE then JWS, joserfc);
- ``policy``: the named checks a verdict must pass;
- ``verdicts``: the flow (decode, replay record, checks, nonce/challenge, store on the device)
  and the upload gate.

The two decoders are imported on first use only, so their SDKs stay out of the cold start.
"""
