"""User-side library for the KMS and the encrypted store (used by ``files`` CLI, demo, e2e tests).

Every call sends the session id in the ``sid`` header. API methods return the server's JSON
object and raise :class:`~client.device_api.ClientError` (error answer) or
:class:`~client.device_api.TransportError` (unreachable / timeout), like the device client.

Example::

    from client.files_api import FilesClient

    alice = FilesClient("http://localhost:7071", sid)
    alice.put_file("report.pdf")                  # get_public_key + client-side encrypt + upload
    alice.grant("report.pdf", "bob@example.org")
    FilesClient(url, bob_sid).get_file("report.pdf", "copy.pdf")   # download + /unwrap_key + decrypt
    alice.rotate_file("report.pdf")               # new key version, re-encrypted, old versions retired

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

from client.device_api import DEFAULT_TIMEOUT, ClientError, request_json
from client.envelope import EnvelopeError, Sealed, open_sealed, open_with_data_key, seal
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


@dataclass(frozen=True)
class StoredEnvelope:
    """A downloaded file: the ``sealed`` parts, the file ``key_version`` whose public key wrapped
    its data key, and the blob's ``etag`` (for a conditional replace)."""

    sealed: Sealed
    key_version: int
    etag: str | None


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

    def get_private_key(self, file_name: str, key_version: int | None = None) -> bytes:
        """The file's PEM PKCS#8 private key (owner or grantee only; the seed's export path, which
        the server may switch off with ``KMS_EXPORT_PRIVATE_KEYS=false``)."""
        document: dict[str, Any] = {"file_name": file_name}
        if key_version is not None:
            document["key_version"] = key_version
        body = self._request("POST", "/get_private_key", json=document)
        return base64.b64decode(body["kms_private_key"])

    def unwrap_key(self, file_name: str, encrypted_aes_key: bytes, key_version: int | None = None) -> bytes:
        """The data key inside ``encrypted_aes_key``, unwrapped by the KMS with the file's private
        key of ``key_version`` (default: the current one), which never leaves the KMS."""
        document: dict[str, Any] = {"file_name": file_name, "encrypted_aes_key": _b64(encrypted_aes_key)}
        if key_version is not None:
            document["key_version"] = key_version
        body = self._request("POST", "/unwrap_key", json=document)
        try:
            return base64.b64decode(body["aes_key"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise EnvelopeError("the server's unwrap answer lacks a base64 aes_key") from None

    def rotate_key(self, file_name: str, from_version: int | None = None) -> tuple[int, bytes]:
        """A new version of the file's key pair (owner only): ``(key_version, PEM public key)``.
        With ``from_version``, a key already rotated past it is returned instead (a retry)."""
        document: dict[str, Any] = {"file_name": file_name}
        if from_version is not None:
            document["from_version"] = from_version
        body = self._request("POST", "/rotate_file_key", json=document)
        return int(body["key_version"]), base64.b64decode(body["kms_public_key"])

    def retire_key_versions(self, file_name: str, min_version: int) -> dict[str, Any]:
        """Destroy the file key's versions below ``min_version`` (owner only; refused while the
        stored file still needs one)."""
        return self._request("POST", "/retire_file_key", json={"file_name": file_name, "min_version": min_version})

    def grant(self, file_name: str, friend_email: str) -> dict[str, Any]:
        """Let ``friend_email`` fetch the file's key (owner only)."""
        return self._request("POST", "/grant_access", json={"file_name": file_name, "friend_email": friend_email})

    def revoke(self, file_name: str, friend_email: str) -> dict[str, Any]:
        """Withdraw ``friend_email``'s access at once (owner only)."""
        return self._request("POST", "/revoke_access", json={"file_name": file_name, "friend_email": friend_email})

    # -- store -----------------------------------------------------------------------------

    def upload(self, file_name: str, sealed: Sealed, *, key_version: int | None = None,
               if_match: str | None = None) -> dict[str, Any]:
        """POST /upload of an already sealed file; with ``if_match`` (an etag from
        :meth:`download_envelope`) it replaces the stored file only if it is still that one."""
        document: dict[str, Any] = {
            "file_name": file_name,
            "encrypted_data": _b64(sealed.encrypted_data),
            "encrypted_aes_key": _b64(sealed.encrypted_aes_key),
            "encrypted_aes_initial_vector": _b64(sealed.encrypted_aes_initial_vector),
        }
        if key_version is not None:
            document["key_version"] = key_version
        return self._request("POST", "/upload", json=document, headers={"If-Match": if_match} if if_match else None)

    def download(self, file_name: str) -> Sealed:
        """GET /download: the stored envelope, still encrypted."""
        return self.download_envelope(file_name).sealed

    def download_envelope(self, file_name: str) -> StoredEnvelope:
        """GET /download: the stored envelope with its key version and etag."""
        body = self._request("GET", "/download", params={"file_name": file_name})
        try:
            sealed = Sealed(*(base64.b64decode(body[name], validate=True) for name in
                              ("encrypted_data", "encrypted_aes_key", "encrypted_aes_initial_vector")))
        except (KeyError, TypeError, ValueError):
            raise EnvelopeError("the server's download answer lacks a base64 envelope field") from None
        version = body.get("key_version", 1)
        return StoredEnvelope(sealed, version if isinstance(version, int) else 1, body.get("etag"))

    def list_files(self) -> dict[str, Any]:
        """GET /list_files: ``{"files": [names], "entries": [{file_name, role, owner}]}``."""
        return self._request("GET", "/list_files")

    # -- whole flows -----------------------------------------------------------------------

    def put_bytes(self, file_name: str, plaintext: bytes) -> dict[str, Any]:
        """Reserve the name with the KMS, encrypt on this machine, upload the ciphertext."""
        return self.upload(file_name, seal(plaintext, file_name, self.get_public_key(file_name)))

    def get_bytes(self, file_name: str, *, export_private_key: bool = False) -> bytes:
        """Download, have the KMS unwrap the data key (``POST /unwrap_key``), decrypt and verify.
        ``export_private_key`` takes the seed's path instead: fetch the private key and unwrap
        here. Raises :class:`EnvelopeError` when the tag does not verify."""
        stored = self.download_envelope(file_name)
        if export_private_key:
            return open_sealed(stored.sealed, file_name, self.get_private_key(file_name, stored.key_version))
        data_key = self.unwrap_key(file_name, stored.sealed.encrypted_aes_key, stored.key_version)
        return open_with_data_key(stored.sealed, file_name, data_key)

    def rotate_file(self, file_name: str, *, retire: bool = True) -> int:
        """Rotate the file's key (owner only) and re-encrypt the stored file under the new version;
        returns the new key version.

        Steps: download the envelope (its key version and etag); ``/rotate_file_key`` from that
        version (a key already rotated past it, by an earlier interrupted run, is reused); unwrap
        the data key with the old version, decrypt and verify here; seal again under a fresh data
        key and the new public key; replace the stored file only if it is unchanged (``If-Match``;
        :class:`ClientError` 412 otherwise, nothing replaced); then, unless ``retire`` is false,
        retire the older versions. Every step may be interrupted: the stored file stays readable
        (its version is kept until the replace landed) and running this again completes it.
        """
        try:
            stored: StoredEnvelope | None = self.download_envelope(file_name)
        except ClientError as error:
            if error.status != 404:
                raise
            stored = None  # nothing uploaded yet: only the key rotates
        version, public_pem = self.rotate_key(file_name, stored.key_version if stored else None)
        if stored is not None and stored.key_version < version:
            data_key = self.unwrap_key(file_name, stored.sealed.encrypted_aes_key, stored.key_version)
            plaintext = open_with_data_key(stored.sealed, file_name, data_key)
            self.upload(file_name, seal(plaintext, file_name, public_pem), key_version=version, if_match=stored.etag)
        if retire:
            self.retire_key_versions(file_name, version)
        return version

    def put_file(self, path: str | os.PathLike[str], file_name: str | None = None) -> dict[str, Any]:
        """:meth:`put_bytes` of the file at ``path`` under ``file_name`` (default: its base name)."""
        source = Path(path)
        return self.put_bytes(file_name or source.name, source.read_bytes())

    def get_file(self, file_name: str, destination: str | os.PathLike[str], *, export_private_key: bool = False) -> Path:
        """:meth:`get_bytes` written to ``destination`` (only after the tag verified); returns it."""
        target = Path(destination)
        target.write_bytes(self.get_bytes(file_name, export_private_key=export_private_key))
        return target

    def _request(self, method: str, route: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        all_headers = {"Accept": "application/json", "sid": self._sid, **(headers or {})}
        return request_json(self.session, method, self.server_url, route, self.timeout, headers=all_headers, **kwargs)
