"""Platform: what every area builds on, and nothing area-specific.

- settings and HTTP: ``config`` (the typed settings table), ``http`` (JSON responses, body and
  parameter parsing, the one error → status mapping), ``errors`` (typed 4xx/5xx errors);
- storage: ``cosmos`` (client, the container declarations, conditional writes), ``blobs``
  (client, error mapping), ``blob_access`` (SAS URLs), ``identity`` (the Entra ID credential),
  ``health`` (reachability of both stores), ``purge`` (expired items of every expiring container);
- security building blocks: ``crypto`` (pyca/cryptography and ``secrets``), ``passwords``
  (peppered bcrypt), ``login_throttle`` (password-guessing limits), ``rate_limit`` (shared
  fixed-window counters), ``client_address`` (X-Forwarded-For, IP lists), ``bearer`` (RFC 6750
  headers), ``security_log`` (structured security events), ``timeutil``.

Platform modules import only each other, never an area package (a test checks this). No imports
here, so importing a single module loads only what it needs.
"""
