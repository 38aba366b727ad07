"""User-side library for the KMS and the encrypted store (used by ``files`` CLI, demo, e2e tests).

Every call sends the session id in the ``sid`` header. API methods return the server's JSON
object and raise :class:`~client.device_api.ClientError` (error answer) or
:class:`~client.device_api.TransportError` (unreachable / timeout), like the device client.

Example::

    from client.files_api import FilesClient

    alice = FilesClient("http://localhost:7071", sid)
    alice.put_file("report.pdf")                  # get_public_key + client-side encrypt + upload
    alice.grant("report.pdf", "bob@example.org")
    FilesClient(url, bob_sid).get_file("report.pdf", "copy.pdf")   # key + download + decrypt

The session comes from ``<client home>/session.json`` = ``{"server", "email", "sid"}`` (written
by ``python -m client user login``), see :func:`load_session`.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from client.device_api import DEFAULT_TIMEOUT, request_json
from client.envelope import EnvelopeError, Sealed, open_sealed, seal
from client.state import StateError, resolve_home

SESSION_FILE = "session.json"
SID_ENV = "TRUSTGATE_SID"


@dataclass(frozen=True)
class UserSession:
    """A logged-in user: server base URL, email, and the session id (secret: never print it)."""

    server: str
    email: str
    sid: str

    def __repr__(self) -> str:
        return f"UserSession(server={self.server!r}, email={self.email!r})"


def load_session(home: str | os.PathLike[str] | None = None) -> UserSession:
    """Read ``<home>/session.json``; raises :class:`StateError` when missing or malformed."""
    path = resolve_home(home) / SESSION_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StateError(f"no session in {path.parent}; run 'python -m client user login' first") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise StateError(f"{path} is not a readable JSON session file") from None
    values = [document.get(key) if isinstance(document, dict) else None for key in ("server", "email", "sid")]
    if not all(isinstance(value, str) and value for value in values):
        raise StateError(f"{path} lacks server, email or sid")
    return UserSession(*values)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class FilesClient:
    """The KMS and encrypted-store API for one session."""

    def __init__(self, server_url: str, sid: str, *, timeout: float = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None) -> None:
        self.server_url = server_url.rstrip("/")
        self._sid = sid
        self.timeout = timeout
        self.session = session or requests.Session()

    def __repr__(self) -> str:
        return f"FilesClient({self.server_url!r})"

    # -- KMS -------------------------------------------------------------------------------

    def get_public_key(self, file_name: str) -> bytes:
        """Create the file's KMS key pair (caller becomes owner); returns the PEM public key."""
        body = self._request("POST", "/get_public_key", json={"file_name": file_name})
        return base64.b64decode(body["kms_public_key"])

    def get_private_key(self, file_name: str) -> bytes:
        """The file's PEM PKCS#8 private key (owner or grantee only)."""
        body = self._request("POST", "/get_private_key", json={"file_name": file_name})
        return base64.b64decode(body["kms_private_key"])

    def grant(self, file_name: str, friend_email: str) -> dict[str, Any]:
        """Let ``friend_email`` fetch the file's key (owner only)."""
        return self._request("POST", "/grant_access", json={"file_name": file_name, "friend_email": friend_email})

    def revoke(self, file_name: str, friend_email: str) -> dict[str, Any]:
        """Withdraw ``friend_email``'s access at once (owner only)."""
        return self._request("POST", "/revoke_access", json={"file_name": file_name, "friend_email": friend_email})

    # -- store -----------------------------------------------------------------------------

    def upload(self, file_name: str, sealed: Sealed) -> dict[str, Any]:
        """POST /upload of an already sealed file."""
        return self._request("POST", "/upload", json={
            "file_name": file_name,
            "encrypted_data": _b64(sealed.encrypted_data),
            "encrypted_aes_key": _b64(sealed.encrypted_aes_key),
            "encrypted_aes_initial_vector": _b64(sealed.encrypted_aes_initial_vector),
        })

    def download(self, file_name: str) -> Sealed:
        """GET /download: the stored envelope, still encrypted."""
        body = self._request("GET", "/download", params={"file_name": file_name})
        try:
            return Sealed(*(base64.b64decode(body[name], validate=True) for name in
                            ("encrypted_data", "encrypted_aes_key", "encrypted_aes_initial_vector")))
        except (KeyError, TypeError, ValueError):
            raise EnvelopeError("the server's download answer lacks a base64 envelope field") from None

    def list_files(self) -> dict[str, Any]:
        """GET /list_files: ``{"files": [names], "entries": [{file_name, role, owner}]}``."""
        return self._request("GET", "/list_files")

    # -- whole flows -----------------------------------------------------------------------

    def put_bytes(self, file_name: str, plaintext: bytes) -> dict[str, Any]:
        """Reserve the name with the KMS, encrypt on this machine, upload the ciphertext."""
        return self.upload(file_name, seal(plaintext, file_name, self.get_public_key(file_name)))

    def get_bytes(self, file_name: str) -> bytes:
        """Download, fetch the KMS private key, decrypt and verify; raises :class:`EnvelopeError`
        when the tag does not verify."""
        sealed = self.download(file_name)
        return open_sealed(sealed, file_name, self.get_private_key(file_name))

    def put_file(self, path: str | os.PathLike[str], file_name: str | None = None) -> dict[str, Any]:
        """:meth:`put_bytes` of the file at ``path`` under ``file_name`` (default: its base name)."""
        source = Path(path)
        return self.put_bytes(file_name or source.name, source.read_bytes())

    def get_file(self, file_name: str, destination: str | os.PathLike[str]) -> Path:
        """:meth:`get_bytes` written to ``destination`` (only after the tag verified); returns it."""
        target = Path(destination)
        target.write_bytes(self.get_bytes(file_name))
        return target

    def _request(self, method: str, route: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"Accept": "application/json", "sid": self._sid}
        return request_json(self.session, method, self.server_url, route, self.timeout, headers=headers, **kwargs)
