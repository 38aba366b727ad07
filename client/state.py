"""The device's local state: where it lives and how it is read and written.

Layout of the state directory (``--home``, else ``$TRUSTGATE_HOME``, else ``~/.trustgate``)::

    <home>/            mode 0700
      device.json      mode 0600  {"server", "deviceid", "deviceToken", "key_path", "key_type", ...}
      device_key.pem   mode 0600  PKCS#8 PEM private key

Both files are written atomically (temporary file in the same directory, then rename) and
created with mode 0600 from the start, so the secret is never briefly world-readable.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.keys import PrivateKey, load_private_key_pem, private_key_to_pem

HOME_ENV = "TRUSTGATE_HOME"
STATE_FILE = "device.json"
KEY_FILE = "device_key.pem"


class StateError(Exception):
    """The local device state is missing, unreadable or malformed (the message says which)."""


@dataclass
class DeviceState:
    """What ``device init`` saves. ``device_token`` is a secret: never print or log it.

    ``key_path`` is the absolute path of the PKCS#8 PEM private key. ``registered_at`` and
    ``attested_at`` are ISO-8601 UTC strings set by the CLI after the server accepted the step.
    ``attestation_format`` is how the key was attested (``key``, ``android-key``,
    ``apple-appattest``); App Attest devices also keep their ``app_id`` and the last
    ``assertion_counter`` they used (each request's assertion carries a greater one).
    ``pending_device_token`` (also a secret) is a token ``device rotate-token`` sent but has not
    seen confirmed yet: the next run finds out which token the server has.
    """

    server: str
    deviceid: str
    device_token: str
    key_path: str
    key_type: str
    registered_at: str | None = None
    attested_at: str | None = None
    attestation_format: str | None = None
    app_id: str | None = None
    assertion_counter: int = 0
    pending_device_token: str | None = None

    def __repr__(self) -> str:  # keep the token out of tracebacks and debug output
        return f"DeviceState(server={self.server!r}, deviceid={self.deviceid!r}, key_type={self.key_type!r})"

    def to_json(self) -> dict[str, Any]:
        """The JSON document stored in ``device.json`` (the token under ``deviceToken``)."""
        return {
            "server": self.server,
            "deviceid": self.deviceid,
            "deviceToken": self.device_token,
            "key_path": self.key_path,
            "key_type": self.key_type,
            "registered_at": self.registered_at,
            "attested_at": self.attested_at,
            "attestation_format": self.attestation_format,
            "app_id": self.app_id,
            "assertion_counter": self.assertion_counter,
            "pending_device_token": self.pending_device_token,
        }

    @classmethod
    def from_json(cls, document: Any) -> "DeviceState":
        """Parse a ``device.json`` document; raises :class:`StateError` naming a bad field."""
        if not isinstance(document, dict):
            raise StateError("device state is not a JSON object")
        values: dict[str, Any] = {}
        for field, key in (("server", "server"), ("deviceid", "deviceid"), ("device_token", "deviceToken"),
                           ("key_path", "key_path"), ("key_type", "key_type")):
            value = document.get(key)
            if not isinstance(value, str) or not value:
                raise StateError(f"device state field '{key}' is missing or not a string")
            values[field] = value
        for field in ("registered_at", "attested_at", "attestation_format", "app_id", "pending_device_token"):
            value = document.get(field)
            values[field] = value if isinstance(value, str) else None
        counter = document.get("assertion_counter")
        values["assertion_counter"] = counter if isinstance(counter, int) and not isinstance(counter, bool) and counter >= 0 else 0
        return cls(**values)


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The state directory: ``home`` if given, else ``$TRUSTGATE_HOME``, else ``~/.trustgate``."""
    if home:
        return Path(home).expanduser()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".trustgate"


def state_path(home: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``device.json`` in the state directory."""
    return resolve_home(home) / STATE_FILE


def default_key_path(home: str | os.PathLike[str] | None = None) -> Path:
    """Where ``device init`` puts the private key: ``<home>/device_key.pem``."""
    return resolve_home(home) / KEY_FILE


def load_state(home: str | os.PathLike[str] | None = None) -> DeviceState:
    """Read ``<home>/device.json``.

    Raises :class:`StateError` when there is no device yet (with the command to create one),
    or the file is unreadable or malformed.
    """
    path = state_path(home)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StateError(f"no device in {path.parent}; run 'python -m client device init --server URL' first") from None
    except OSError as error:
        raise StateError(f"cannot read {path}: {error.strerror}") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise StateError(f"{path} is not valid JSON") from None
    state = DeviceState.from_json(document)
    key_path = Path(state.key_path).expanduser()
    if not key_path.is_absolute():
        state.key_path = str(path.parent / key_path)
    return state


def save_state(state: DeviceState, home: str | os.PathLike[str] | None = None) -> Path:
    """Write ``state`` to ``<home>/device.json`` (mode 0600, atomically); returns the path.

    Creates the state directory with mode 0700 if needed. Raises :class:`OSError` on I/O failure.
    """
    path = state_path(home)
    ensure_home(path.parent)
    data = json.dumps(state.to_json(), indent=2).encode("utf-8") + b"\n"
    write_private_file(path, data)
    return path


def save_private_key(private_key: PrivateKey, path: str | os.PathLike[str]) -> Path:
    """Write ``private_key`` as PKCS#8 PEM to ``path`` (mode 0600, atomically); returns the path."""
    target = Path(path)
    ensure_home(target.parent)
    write_private_file(target, private_key_to_pem(private_key))
    return target


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Read the PEM private key at ``path``.

    Raises :class:`StateError` if it is missing, unreadable, encrypted or of an unsupported type.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise StateError(f"cannot read the device key {path}: {error.strerror}") from None
    try:
        return load_private_key_pem(data)
    except ValueError as error:
        raise StateError(f"device key {path}: {error}") from None


def ensure_home(directory: Path) -> None:
    """Create ``directory`` (and parents) with mode 0700 if it does not exist."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``; the file is mode 0600 from creation on."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)  # mkstemp already uses 0600; be explicit
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
