"""``python -m client device rotate-key | rotate-token`` and ``user delete``: self-service lifecycle.

Each is safe to interrupt and run again:

- ``device rotate-key`` writes the new private key to ``<key file>.next`` (mode 0600) before it
  asks the server, retries a 503 or a timeout with a fresh challenge (``409 key_already_current``
  means the rotation had landed), and only then replaces the key file; a run that could not reach
  the server keeps ``.next`` and the next run resumes with that key;
- ``device rotate-token`` saves the new token as ``pending_device_token`` in ``device.json``
  before it asks; when the answer is lost it asks the server which token works;
- ``user delete`` asks for the password, has the deletion code mailed, takes the code and
  deletes the account (a 503 is retried: the server completes a deletion once decided), then
  forgets the saved session.

Keys, tokens, passwords, codes and the session id are never printed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from client.cli import CommandError, _clean, _client, add_evidence_arguments, simulation
from client.device_api import ClientError, TransportError, simulated_evidence
from client.keys import KEY_TYPES, generate_private_key, key_type_of, public_key_fingerprint
from client.session_store import delete_session, load_session, session_path
from client.state import DeviceState, load_private_key, load_state, save_private_key, save_state
from client.user_api import UserClient

ATTEMPTS = 3
RETRY_SECONDS = 1.0


def add_lifecycle_commands(device_commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``device rotate-key`` and ``device rotate-token``."""
    rotate_key = device_commands.add_parser(
        "rotate-key", parents=[common], help="replace the device key (the old key vouches for the new one)",
        description="Generate a new device key and POST /rotate-device-key: the current key signs "
                    "'rotate:{challenge}:{sha256 of the new public key}', the new key (or, with --format and "
                    "--simulate, fresh hardware evidence) proves possession. The old key is refused afterwards.")
    rotate_key.add_argument("--key-type", choices=KEY_TYPES, help="new key algorithm (default: the current one's)")
    add_evidence_arguments(rotate_key)
    rotate_key.set_defaults(handler=cmd_device_rotate_key)
    rotate_token = device_commands.add_parser(
        "rotate-token", parents=[common], help="replace the device token; the old one stops working at once",
        description="POST /rotate-device-token with a new random token, proved by the device key.")
    rotate_token.set_defaults(handler=cmd_device_rotate_token)


def add_user_delete(actions: Any, common: argparse.ArgumentParser) -> None:
    """Register ``user delete`` on the ``user`` command's actions."""
    delete = actions.add_parser(
        "delete", parents=[common], help="delete your account, its keys, files and grants, for good",
        description="With the saved session: check the password, have a deletion code mailed, then POST "
                    "/delete_account. Files you own become unreadable (their keys are destroyed) and are deleted.")
    delete.add_argument("--otp", metavar="CODE", help="the deletion code, when it was mailed already (else one is asked for)")
    delete.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    delete.add_argument("--yes", action="store_true", help="do not ask to type the address to confirm")
    delete.set_defaults(handler=cmd_user_delete)


# -- device rotate-key --------------------------------------------------------------------------

def _pending_key_path(state: DeviceState) -> Path:
    key_path = Path(state.key_path)
    return key_path.with_name(key_path.name + ".next")


def cmd_device_rotate_key(args: argparse.Namespace, out: TextIO) -> int:
    """Rotate the device key, resuming a rotation whose new key is still pending."""
    state = load_state(args.home)
    client = _client(state, args)
    pending = _pending_key_path(state)
    if pending.exists():
        new_key = load_private_key(pending)
        print(f"resuming the pending rotation to {public_key_fingerprint(new_key)}", file=out)
    else:
        new_key = generate_private_key(args.key_type or state.key_type)
        save_private_key(new_key, pending)
    evidence, app_id = None, None
    if args.format != "key":
        if not args.simulate:
            raise CommandError(f"--format {args.format} needs a device's secure hardware; on this computer add --simulate "
                               "(dev stack only)")
        authority, options = simulation(args)
        evidence = lambda challenge: simulated_evidence(authority, args.format, new_key, challenge, **options)  # noqa: E731
        app_id = options.get("app_id")
    try:
        result = _until_confirmed(lambda: client.rotate_key(new_key, evidence, app_id), "key_already_current",
                                  f"the new key stays in {pending}; run the command again to finish")
    except ClientError:
        pending.unlink(missing_ok=True)  # refused for good: the next run starts afresh
        raise
    finally:
        if client.app_attest is not None and client.private_key is not new_key:
            state.assertion_counter = client.app_attest.counter  # the old key's assertions are spent
            save_state(state, args.home)
    if result is None:  # the rotation had landed before
        client.adopt_key(new_key, app_id)
        result = {}
    save_private_key(new_key, state.key_path)
    pending.unlink(missing_ok=True)
    state.key_type = key_type_of(new_key)
    state.attestation_format = args.format
    state.app_id = app_id
    state.assertion_counter = client.app_attest.counter if client.app_attest else 0
    save_state(state, args.home)
    trust = _clean(str(result.get("trust_level", "unchanged")))
    print(f"rotated the key of {state.deviceid}: now {public_key_fingerprint(new_key)} ({state.key_type}, "
          f"trust level {trust}); the old key is refused from now on", file=out)
    return 0


def _until_confirmed(call: Callable[[], dict[str, Any]], landed: str | None, advice: str) -> dict[str, Any] | None:
    """``call()`` retried after a 503 or a timeout, at most :data:`ATTEMPTS` times; ``None`` when the
    server answers ``409 landed`` (what an earlier attempt did took effect). Raises
    :class:`CommandError` with ``advice`` when every attempt failed that way."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except ClientError as error:
            if landed and error.status == 409 and error.message == landed:
                return None
            if error.status != 503:
                raise
            reason = f"{error.message} ({error.status})"
        except TransportError as error:
            reason = str(error)
        if attempt + 1 < ATTEMPTS:
            print(f"the server did not confirm ({_clean(reason)}); trying again", file=sys.stderr)
            time.sleep(RETRY_SECONDS * (attempt + 1))
    raise CommandError(f"the server did not confirm after {ATTEMPTS} attempts ({_clean(reason)}); {advice}")


# -- device rotate-token ------------------------------------------------------------------------

def cmd_device_rotate_token(args: argparse.Namespace, out: TextIO) -> int:
    """Rotate the device token; a token left pending by an interrupted run is finished first."""
    state = load_state(args.home)
    client = _client(state, args)
    if state.pending_device_token and client.uses_token(state.pending_device_token):
        _adopt_token(state, args, out, "the pending token was already in effect")
        return 0
    state.pending_device_token = state.pending_device_token or secrets.token_urlsafe(32)
    save_state(state, args.home)

    def rotate() -> dict[str, Any]:
        try:
            return client.rotate_token(state.pending_device_token or "")
        except (ClientError, TransportError) as error:
            if (isinstance(error, TransportError) or error.status == 503) and client.uses_token(state.pending_device_token or ""):
                return {}
            raise

    _until_confirmed(rotate, None, "the new token stays pending in device.json; run the command again to finish")
    _adopt_token(state, args, out, "the old token is refused from now on")
    return 0


def _adopt_token(state: DeviceState, args: argparse.Namespace, out: TextIO, note: str) -> None:
    state.device_token, state.pending_device_token = state.pending_device_token or state.device_token, None
    save_state(state, args.home)
    print(f"rotated the token of {state.deviceid}; {note}", file=out)


# -- user delete ----------------------------------------------------------------------------------

def cmd_user_delete(args: argparse.Namespace, out: TextIO) -> int:
    """Delete the saved session's account after confirming, then forget the session."""
    saved = load_session(args.home)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("confirm with --yes when stdin is not a terminal (nothing was deleted)")
        if input(f"this deletes {saved.email} with every file and key it owns; type the address to confirm: ").strip().lower() != saved.email:
            raise CommandError("the address did not match (nothing was deleted)")
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else getpass.getpass("password: ")
    if not password:
        raise CommandError("empty password (nothing was sent)")
    users = UserClient(saved.server, timeout=args.timeout)
    code = args.otp
    if code is None:
        users.request_deletion(saved.sid, password)
        if not sys.stdin.isatty():
            print(f"a deletion code was mailed to {saved.email}; run: python -m client user delete --otp CODE", file=out)
            return 0
        code = input("code from the mail: ").strip()
    answer = _until_confirmed(lambda: users.delete_account(saved.sid, password, code), None,
                              "run the same command again: the server completes a deletion once decided")
    delete_session(args.home)
    summary = (answer or {}).get("summary") or {}
    print(f"deleted the account {saved.email}: {json.dumps(summary, sort_keys=True)}; removed {session_path(args.home)}",
          file=out)
    return 0

