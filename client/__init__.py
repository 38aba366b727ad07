"""TrustGate device client: the ``python -m client`` CLI and a small library.

Library entry points (import from here or from the submodules):

- :class:`DeviceClient` (``client.device_api``): register, attest, upload, list files.
- :class:`ClientError` / :class:`TransportError`: what its methods raise.
- :func:`sign` and key helpers (``client.keys``): per-key-type signing with ``cryptography``.
- :func:`load_state` / :func:`save_state` (``client.state``): the saved device in ``~/.trustgate``.
"""

from client.device_api import ClientError, DeviceClient, TransportError
from client.keys import KEY_TYPES, UnsupportedKeyError, generate_private_key, public_key_pem, sign
from client.state import DeviceState, StateError, load_state, resolve_home, save_state

__all__ = [
    "KEY_TYPES",
    "ClientError",
    "DeviceClient",
    "DeviceState",
    "StateError",
    "TransportError",
    "UnsupportedKeyError",
    "generate_private_key",
    "load_state",
    "public_key_pem",
    "resolve_home",
    "save_state",
    "sign",
]
