"""Schemathesis hooks for tests/e2e/test_api_contract.py (loaded through schemathesis.toml ``hooks``).

``POST /upload-file`` declares the media types its ``file`` part may have (``ALLOWED_CONTENT_TYPES``);
schemathesis serialises only JSON, text and octet streams by itself, so every other allowed type
gets a strategy of arbitrary bytes (the server checks the declared type, not the content).
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

from shared_code.platform.config import SETTINGS

ALLOWED_CONTENT_TYPES = next(spec.default for spec in SETTINGS if spec.name == "ALLOWED_CONTENT_TYPES")

for media_type in ALLOWED_CONTENT_TYPES.split(","):
    if media_type not in ("application/json", "application/octet-stream", "text/plain"):
        schemathesis.openapi.media_type(media_type, st.binary(max_size=256))
