"""``python -m client integrity …`` and ``device status``: Play Integrity from the device's side.

The integrity token itself comes from the Android app (Play Integrity API); this CLI hands it to
the server. For a classic request, the app's ``nonce`` must be a fresh server challenge
(``integrity nonce`` prints one); for a standard request the app's ``requestHash`` must be the
one ``integrity request-hash`` prints with its challenge, and ``verify --challenge`` sends it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from client.cli import CommandError, _clean, _client
from client.device_api import standard_request_hash
from client.state import load_state

MAX_TOKEN_FILE_BYTES = 64 * 1024


def add_integrity_commands(commands: Any, device_commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``integrity nonce|verify`` and ``device status`` on the parser's subcommands."""
    integrity = commands.add_parser("integrity", help="verify Google Play Integrity tokens with the server",
                                    description="Hand Play Integrity tokens from the Android app to the server.")
    actions = integrity.add_subparsers(dest="integrity_command", metavar="ACTION", required=True)

    nonce = actions.add_parser("nonce", parents=[common], help="print a fresh challenge to use as the classic request nonce",
                               description="GET /api/challenge and print it: pass it as the nonce of a classic "
                                           "Play Integrity request, then verify the token within its lifetime.")
    nonce.set_defaults(handler=cmd_integrity_nonce)

    request_hash = actions.add_parser(
        "request-hash", parents=[common], help="print a fresh challenge and the standard request's requestHash",
        description="GET /api/challenge and print it with the requestHash the app must give a Play Integrity "
                    "standard request (unpadded base64url of SHA-256 of '{deviceid}:{challenge}'); then "
                    "'integrity verify --challenge CHALLENGE'.")
    request_hash.set_defaults(handler=cmd_integrity_request_hash)

    mint = actions.add_parser(
        "mint", parents=[common], help="DEV ONLY: mint a local-mode test token as Play would",
        description="Print a Play Integrity token sealed with the dev stack's local-mode response keys "
                    "(<test authority>/play-integrity.json), as the Android app would get it from Play. Pass the "
                    "classic request's nonce (from 'integrity nonce') or the standard request's requestHash "
                    "(from 'integrity request-hash').")
    which = mint.add_mutually_exclusive_group(required=True)
    which.add_argument("--nonce", help="classic request: the challenge used as nonce (write --nonce=VALUE: it may start with -)")
    which.add_argument("--request-hash", help="standard request: the requestHash (write --request-hash=VALUE)")
    mint.add_argument("--device-verdict", choices=("NONE", "BASIC", "DEVICE", "STRONG"), default="DEVICE",
                      help="deviceRecognitionVerdict to claim (default: DEVICE)")
    mint.add_argument("--test-authority", metavar="DIR", type=Path,
                      help="default: $TRUSTGATE_TEST_AUTHORITY, else ./.devhost/test-authority")
    mint.set_defaults(handler=cmd_integrity_mint)

    verify = actions.add_parser(
        "verify", parents=[common], help="POST /verify an integrity token",
        description="Send the integrity token in FILE to POST /verify. Exit status 0 when the verdict is "
                    "valid, 1 when a check failed (the failed checks are printed) or the server refused.")
    verify.add_argument("--token-file", required=True, metavar="FILE",
                        help="file holding the token the app got from Play ('-' for stdin)")
    verify.add_argument("--challenge", metavar="CHALLENGE",
                        help="standard request: the challenge whose requestHash the app gave Play (omit for classic requests; "
                             "write --challenge=VALUE, a challenge may start with -)")
    verify.add_argument("--json", action="store_true", help="print the server's JSON answer")
    verify.set_defaults(handler=cmd_integrity_verify)

    status = device_commands.add_parser("status", parents=[common],
                                        help="show the device record on the server, with its latest integrity verdict",
                                        description="GET /api/device: registration, attestation and the latest "
                                                    "Play Integrity verdict as the server has them.")
    status.add_argument("--json", action="store_true", help="print the server's JSON answer")
    status.set_defaults(handler=cmd_device_status)


def _read_token(name: str) -> str:
    if name == "-":
        text = sys.stdin.read(MAX_TOKEN_FILE_BYTES + 1)
    else:
        path = Path(name)
        if not path.is_file():
            raise CommandError(f"{name}: not a readable file")
        with path.open(encoding="ascii", errors="replace") as handle:
            text = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    token = text.strip()
    if not token or len(text) > MAX_TOKEN_FILE_BYTES:
        raise CommandError(f"{name}: expected one integrity token (at most {MAX_TOKEN_FILE_BYTES} bytes)")
    return token


def cmd_integrity_nonce(args: argparse.Namespace, out: TextIO) -> int:
    result = _client(load_state(args.home), args).challenge()
    print(_clean(str(result.get("challenge"))), file=out)
    print(f"valid until {_clean(str(result.get('expires_at')))}", file=sys.stderr)
    return 0


def cmd_integrity_request_hash(args: argparse.Namespace, out: TextIO) -> int:
    state = load_state(args.home)
    challenge = str(_client(state, args).challenge().get("challenge"))
    print(f"challenge:    {_clean(challenge)}", file=out)
    print(f"requestHash:  {standard_request_hash(state.deviceid, challenge)}", file=out)
    return 0


def cmd_integrity_mint(args: argparse.Namespace, out: TextIO) -> int:
    from client.attestation_sim import default_authority_dir
    from client.integrity_mint import PlayIntegrityDevKeys, mint_token, verdict_payload

    directory = args.test_authority or default_authority_dir()
    try:
        keys = PlayIntegrityDevKeys.load(directory)
    except (OSError, ValueError, KeyError):
        raise CommandError(f"no Play Integrity dev keys in {directory} (start the dev stack: make run)") from None
    labels = () if args.device_verdict == "NONE" else (f"MEETS_{args.device_verdict}_INTEGRITY",)
    print(mint_token(keys, verdict_payload(keys, nonce=args.nonce, request_hash=args.request_hash, device=labels)), file=out)
    return 0


def _print_integrity(result: dict[str, Any] | None, out: TextIO) -> None:
    if not result:
        print(f"{'integrity:':<12} never verified", file=out)
        return
    verdict = result.get("verdict") or {}
    failed = ", ".join(_clean(str(check)) for check in result.get("failed_checks") or []) or "none"
    rows = [
        ("integrity", "valid" if result.get("valid") else "NOT valid"),
        ("failed", failed),
        ("checked", result.get("checked_at")),
        ("request", verdict.get("request_type")),
        ("app", verdict.get("app_recognition")),
        ("device", " ".join(str(label) for label in verdict.get("device_recognition") or []) or "-"),
        ("licensing", verdict.get("app_licensing")),
    ]
    for label, value in rows:
        print(f"{label + ':':<12} {_clean(str(value))}", file=out)


def cmd_integrity_verify(args: argparse.Namespace, out: TextIO) -> int:
    token = _read_token(args.token_file)
    result = _client(load_state(args.home), args).verify_integrity(token, args.challenge)
    if args.json:
        print(json.dumps(result, indent=2), file=out)
    else:
        _print_integrity(result, out)
    return 0 if result.get("valid") is True else 1


def cmd_device_status(args: argparse.Namespace, out: TextIO) -> int:
    result = _client(load_state(args.home), args).device_info()
    if args.json:
        print(json.dumps(result, indent=2), file=out)
        return 0
    device = result.get("device") or {}
    for label, key in (("deviceid", "deviceid"), ("registered", "registered_at"), ("key type", "key_type"),
                       ("attested", "attested_at"), ("trust level", "trust_level")):
        print(f"{label + ':':<12} {_clean(str(device.get(key) or 'no'))}", file=out)
    attestation = device.get("attestation") or {}
    if attestation.get("format") not in (None, "key"):
        claims = ", ".join(f"{k}={_clean(str(v))}" for k, v in attestation.items() if k not in ("serials",) and v is not None)
        print(f"{'attestation:':<12} {claims}", file=out)
    _print_integrity(device.get("integrity"), out)
    return 0
