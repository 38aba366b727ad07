"""``make demo`` step for the secure file store: two users share a real file, then the grant is revoked.

Drives the CLI exactly as a user would, each user with their own client home: ``user register``
and ``user login`` (password on stdin) with the codes the app mails to the dev mailbox
(:class:`devhost.mailbox.Mailbox`), then ``files put`` (encrypted on the client; the stored blob
is checked to be ciphertext) of a repository file, ``files grant``, the friend's ``files ls`` and
``files get`` (decrypted and verified on the client) compared byte for byte with the original,
``files revoke``. After it the friend's ``files get`` is refused at the download (404
``file_not_found``: the store asks the KMS for the grant too) and the friend's key request with
400 ``access_denied``, while the owner still decrypts the file. Ends with ``user logout`` and
shows the old session is dead.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Callable

from client.device_api import ClientError
from client.files_api import FilesClient, UserSession, load_session
from devhost.__main__ import ROOT
from devhost.mailbox import Mailbox

DEMO_FILE = ROOT / "docs" / "openapi.yaml"

Check = Callable[[str, bool], None]


def same_bytes(original: Path, copy: Path) -> tuple[bool, str]:
    """Whether ``copy`` holds exactly the bytes of ``original``, and a short account of both
    (size in bytes and SHA-256 prefix; ``missing`` when ``copy`` does not exist)."""
    expected = original.read_bytes()
    if not copy.is_file():
        return False, f"{copy.name} missing"
    actual = copy.read_bytes()

    def summary(data: bytes) -> str:
        return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}"

    if actual == expected:
        return True, summary(expected)
    return False, f"expected {summary(expected)}, got {summary(actual)}"


def _client(home: Path, *args: str, stdin: str | None = None, expect_ok: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m client --home HOME ARGS``; a failure ends the demo unless ``expect_ok`` is False."""
    shown = " ".join(args) + ("  (password on stdin)" if stdin is not None else "")
    print(f"\n$ python -m client --home {home.name} {shown}", flush=True)
    result = subprocess.run([sys.executable, "-m", "client", "--home", str(home), *args], cwd=ROOT,
                            input=stdin, capture_output=True, text=True, encoding="utf-8", timeout=300)
    for text in (result.stdout, result.stderr):
        if text.strip():
            print(text.rstrip(), flush=True)
    if expect_ok and result.returncode != 0:
        raise SystemExit(f"demo step failed: python -m client {' '.join(args)}")
    return result


def _sign_in(server: str, mailbox: Mailbox, home: Path, email: str) -> str:
    """Register ``email`` and log in through the CLI, typing the codes that arrive in ``mailbox``;
    returns the password."""
    from shared_code.accounts import otp

    password = secrets.token_urlsafe(18)
    home.mkdir(parents=True, exist_ok=True)
    for command, purpose in (("register", otp.REGISTER), ("login", otp.LOGIN)):
        before = mailbox.otp_count(email, purpose)
        _client(home, "user", command, "--server", server, "--email", email, "--password-stdin", stdin=password + "\n")
        code = mailbox.latest_otp(email, purpose, after=before)
        _client(home, "user", "verify", "--otp", code)
    return password


def _stored_is_ciphertext(file_name: str, plaintext: bytes) -> tuple[bool, str]:
    """Read the file's blob straight from the store (this process hosts the app): it must be the
    AES-GCM ciphertext (plaintext length + 16-byte tag) and hold none of the plaintext's lines."""
    from shared_code.filestore import kms
    from shared_code.platform import blobs
    from shared_code.platform.config import get_settings

    container = blobs.container_client(get_settings().encrypted_files_container)
    stored = container.get_blob_client(kms.key_id(file_name)).download_blob().readall()
    leaked = [line for line in plaintext.splitlines() if len(line) >= 16 and line in stored]
    return len(stored) == len(plaintext) + 16 and not leaked, f"{len(stored)} bytes, {len(leaked)} plaintext lines inside"


def _refused(saved: UserSession, call: Callable[[FilesClient], object], expected: tuple[int, str]) -> tuple[bool, str]:
    """Make ``call`` with a files client on the ``saved`` session; whether the server refused it
    with ``expected`` (status, message), and what happened."""
    try:
        call(FilesClient(saved.server, saved.sid))
    except ClientError as error:
        return (error.status, error.message) == expected, f"{error.status} {error.message}"
    return False, "it was accepted"


def file_store_demo(server: str, mailbox: Mailbox | None, workdir: Path, check: Check, source: Path = DEMO_FILE) -> None:
    """Two users share ``source`` through the encrypted store against ``server``; ``check(label, ok)``
    records each result. ``mailbox`` is the dev SMTP sink the app mails codes to (``None`` when
    ``DEVHOST_MAILBOX=0``: the step is then reported failed). Raises :class:`SystemExit` when a
    client command that should succeed fails."""
    if mailbox is None:
        check("file store: needs the dev mailbox to read the codes (DEVHOST_MAILBOX=0 is set)", False)
        return
    tag = secrets.token_hex(4)
    owner, friend = f"alice-{tag}@example.org", f"bob-{tag}@example.org"
    owner_home, friend_home = workdir / "alice", workdir / "bob"
    name = f"{tag}-{source.name}"
    print(f"\nfile store: {owner} shares {source.relative_to(ROOT)} with {friend}", flush=True)
    for home, email in ((owner_home, owner), (friend_home, friend)):
        _sign_in(server, mailbox, home, email)

    _client(owner_home, "files", "put", str(source), "--name", name)
    ok, detail = _stored_is_ciphertext(name, source.read_bytes())
    check(f"the store holds only ciphertext of {name} ({detail})", ok)
    _client(owner_home, "files", "grant", name, friend)
    listed = json.loads(_client(friend_home, "files", "ls", "--json").stdout)
    copy = friend_home / name
    _client(friend_home, "files", "get", name, "-o", str(copy))
    check(f"{friend} sees {name} as a grantee of {owner}",
          listed == [{"file_name": name, "role": "grantee", "owner": owner}])
    ok, detail = same_bytes(source, copy)
    check(f"{friend} decrypted {name} byte for byte ({detail})", ok)

    _client(owner_home, "files", "revoke", name, friend)
    again = friend_home / f"again-{name}"
    refused = _client(friend_home, "files", "get", name, "-o", str(again), expect_ok=False)
    check(f"after the revoke {friend}'s files get is refused (404 file_not_found) and writes nothing",
          refused.returncode == 1 and "file_not_found (404)" in refused.stderr and not again.exists())
    ok, detail = _refused(load_session(friend_home), lambda files: files.get_private_key(name), (400, "access_denied"))
    check(f"after the revoke {friend}'s key request is refused ({detail})", ok)
    # KMS key service: nothing was handed out, so unwrapping is refused too; the owner rotates.
    ok, detail = _refused(load_session(friend_home), lambda files: files.unwrap_key(name, b"\0" * 384), (400, "access_denied"))
    check(f"after the revoke {friend}'s unwrap request is refused ({detail})", ok)
    rotated = _client(owner_home, "files", "rotate", name)
    check(f"{owner} rotated the key of {name} and re-encrypted it ({rotated.stdout.strip()})", "key version 2" in rotated.stdout)
    owner_copy = owner_home / name
    _client(owner_home, "files", "get", name, "-o", str(owner_copy))
    ok, detail = same_bytes(source, owner_copy)
    check(f"{owner} still decrypts {name} byte for byte ({detail})", ok)

    _client(friend_home, "user", "logout")
    saved = load_session(owner_home)
    _client(owner_home, "user", "logout")
    ok, detail = _refused(saved, lambda files: files.list_files(), (403, "invalid_session"))
    check(f"{owner}'s session is refused after user logout ({detail})", ok)
