"""DEV ONLY: the dev stack's test attestation authority, Play Integrity keys and status list.

So that ``/attest-device`` (hardware formats) and ``/verify`` work on ``make run`` without
Google or Apple, :func:`local_test_authority` (on unless ``DEVHOST_TEST_AUTHORITY=0``):

- creates (once) the test authority of :mod:`client.attestation_sim` and the Play Integrity
  local-mode response keys of :mod:`client.integrity_mint` in ``.devhost/test-authority/``;
- puts into ``os.environ`` only what the settings leave unset: ``ATTESTATION_TEST_ROOTS`` (the
  test roots; never set in Azure), the dev app identity (``ANDROID_ATTESTATION_PACKAGES``,
  ``ANDROID_ATTESTATION_SIGNATURE_DIGESTS``, ``APP_ATTEST_APP_IDS``, ``APP_ATTEST_ENVIRONMENT=development``),
  and, when neither ``PLAY_INTEGRITY_CREDENTIALS`` nor ``PLAY_INTEGRITY_DECRYPTION_KEY`` is set,
  ``PLAY_INTEGRITY_MODE=local`` with the generated keys and the dev package;
- serves the attestation status list from ``.devhost/test-authority/status.json`` (edit it to
  revoke a serial) on a free loopback port, unless ``ANDROID_ATTESTATION_STATUS_URL`` names
  another list than Google's.

The client finds the authority in the same folder (``device attest --simulate``, ``integrity mint``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

from client import attestation_sim as sim
from client.integrity_mint import PlayIntegrityDevKeys
from devhost.settings import get_setting

log = logging.getLogger("devhost")

GOOGLE_STATUS_URL = "https://android.googleapis.com/attestation/status"


def dev_settings(folder: Path) -> dict[str, str]:
    """The settings to add for the test authority in ``folder`` (created on first use)."""
    authority = sim.TestAuthority.load_or_create(folder)
    keys = PlayIntegrityDevKeys.load_or_create(folder)
    wanted = {
        "ATTESTATION_TEST_ROOTS": authority.roots_pem(),
        "ANDROID_ATTESTATION_PACKAGES": sim.DEV_PACKAGE,
        "ANDROID_ATTESTATION_SIGNATURE_DIGESTS": sim.DEV_SIGNER_DIGEST.hex(),
        "APP_ATTEST_APP_IDS": sim.DEV_APP_ID,
    }
    added = {name: value for name, value in wanted.items() if not get_setting(name)}
    if "APP_ATTEST_APP_IDS" in added:
        added["APP_ATTEST_ENVIRONMENT"] = "development"
    if not get_setting("PLAY_INTEGRITY_CREDENTIALS") and not get_setting("PLAY_INTEGRITY_DECRYPTION_KEY"):
        local = keys.settings()
        added.update({name: value for name, value in local.items()
                      if name in ("PLAY_INTEGRITY_MODE", "PLAY_INTEGRITY_DECRYPTION_KEY", "PLAY_INTEGRITY_VERIFICATION_KEY")
                      or not get_setting(name)})
    return added


class StatusListServer:
    """A loopback HTTP server for an attestation status list: ``GET /attestation/status`` answers
    ``respond()`` (``(HTTP status, JSON body bytes)``), any other path 404. ``url`` is the list's URL."""

    PATH = "/attestation/status"

    def __init__(self, respond: Callable[[], tuple[int, bytes]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                status, body = respond() if self.path == StatusListServer.PATH else (404, b"{}")
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{self.PATH}"

    def __enter__(self) -> "StatusListServer":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def local_test_authority(root: Path) -> Iterator[Path | None]:
    """Set up the dev-only attestation and Play Integrity settings (see module docstring) for the
    duration of the block; yields the authority folder, or ``None`` with ``DEVHOST_TEST_AUTHORITY=0``."""
    if get_setting("DEVHOST_TEST_AUTHORITY", "1") == "0":
        yield None
        return
    folder = root / ".devhost" / "test-authority"
    added = dev_settings(folder)
    with contextlib.ExitStack() as stack:
        if get_setting("ANDROID_ATTESTATION_STATUS_URL", GOOGLE_STATUS_URL) == GOOGLE_STATUS_URL:
            status_file = folder / "status.json"
            if not status_file.exists():
                status_file.write_text(json.dumps({"entries": {}}, indent=2) + "\n")
            added["ANDROID_ATTESTATION_STATUS_URL"] = stack.enter_context(
                StatusListServer(lambda: (200, status_file.read_bytes()))).url
        os.environ.update(added)
        os.environ.setdefault(sim.AUTHORITY_ENV, str(folder))
        log.warning("DEV ONLY test attestation authority in %s: %s", folder,
                    ", ".join(sorted(added)) or "nothing added (settings already given)")
        yield folder

