"""The saved user session: ``<client home>/session.json`` = ``{"server", "email", "sid"}``, mode 0600.

``user verify`` (after a login) writes it, ``user logout`` deletes it, and every command that
needs a session (``files …``) reads it with :func:`load_session`. The ``sid`` is a bearer
secret: never print or log it. The home directory is :func:`client.state.resolve_home`.

``pending_otp.json`` (same directory, not secret) remembers which step waits for a mailed code:
``{"server", "email", "purpose": "register" | "login"}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.state import StateError, ensure_home, resolve_home, write_private_file

SESSION_FILE = "session.json"
PENDING_FILE = "pending_otp.json"


@dataclass(frozen=True)
class SavedSession:
    """A logged-in user: the server's base URL, the normalised email, and the session id."""

    server: str
    email: str
    sid: str

    def __repr__(self) -> str:  # keep the sid out of tracebacks
        return f"SavedSession(server={self.server!r}, email={self.email!r})"


@dataclass(frozen=True)
class PendingOtp:
    """A registration or login waiting for its mailed code."""

    server: str
    email: str
    purpose: str


def session_path(home: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``session.json`` in the client home."""
    return resolve_home(home) / SESSION_FILE


def _write(path: Path, document: dict[str, Any]) -> Path:
    ensure_home(path.parent)
    write_private_file(path, json.dumps(document, indent=2).encode("utf-8") + b"\n")
    return path


def _read(path: Path, fields: tuple[str, ...], missing: str) -> dict[str, str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StateError(missing) from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise StateError(f"{path} is unreadable or not valid JSON") from None
    if not isinstance(document, dict) or not all(isinstance(document.get(f), str) and document[f] for f in fields):
        raise StateError(f"{path} must hold the string fields {', '.join(fields)}")
    return {f: document[f] for f in fields}


def save_session(server: str, email: str, sid: str, home: str | os.PathLike[str] | None = None) -> Path:
    """Write ``session.json`` (mode 0600, atomically); returns its path. Raises :class:`OSError`."""
    return _write(session_path(home), {"server": server.rstrip("/"), "email": email, "sid": sid})


def load_session(home: str | os.PathLike[str] | None = None) -> SavedSession:
    """Read ``session.json``. Raises :class:`client.state.StateError` when nobody is logged in
    (with the command to log in) or the file is malformed."""
    path = session_path(home)
    values = _read(path, ("server", "email", "sid"),
                   f"not logged in (no {path}); run 'python -m client user login --server URL --email EMAIL'")
    return SavedSession(**values)


def delete_session(home: str | os.PathLike[str] | None = None) -> bool:
    """Remove ``session.json``; ``True`` if there was one."""
    try:
        session_path(home).unlink()
        return True
    except FileNotFoundError:
        return False


def save_pending(pending: PendingOtp, home: str | os.PathLike[str] | None = None) -> Path:
    """Remember the step waiting for a code in ``pending_otp.json``."""
    return _write(resolve_home(home) / PENDING_FILE, {"server": pending.server, "email": pending.email,
                                                       "purpose": pending.purpose})


def load_pending(home: str | os.PathLike[str] | None = None) -> PendingOtp:
    """The step waiting for a code. Raises :class:`client.state.StateError` when there is none."""
    values = _read(resolve_home(home) / PENDING_FILE, ("server", "email", "purpose"),
                   "nothing waits for a code; run 'python -m client user register' or 'user login' first")
    return PendingOtp(**values)


def clear_pending(home: str | os.PathLike[str] | None = None) -> None:
    """Forget the pending step (after it was verified)."""
    (resolve_home(home) / PENDING_FILE).unlink(missing_ok=True)
