"""``python -m client operator …``: the operator API from the command line.

``--server URL`` and ``--function-key KEY`` (default ``$TRUSTGATE_FUNCTION_KEY``; Azure checks it,
devhost does not). Actions print the server's JSON answer; ``devices list`` prints a table
(``--json`` for JSON). Exit status 0 on success, 1 when the server refuses or cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Callable, TextIO

from client.cli import _clean
from client.operator_api import OperatorClient

KEY_ENV = "TRUSTGATE_FUNCTION_KEY"


def add_operator_commands(commands: Any, common: argparse.ArgumentParser, server_type: Callable[[str], str]) -> None:
    """Register ``operator devices list|suspend|resume|revoke``, ``operator attestation
    revoke-intermediate`` and ``operator users suspend|resume``."""
    operator = commands.add_parser("operator", help="operators: suspend, resume, revoke devices and accounts",
                                   description="The operator API (/operator/...): device and account lifecycle.")
    target = operator.add_subparsers(dest="operator_target", metavar="TARGET", required=True)
    server = argparse.ArgumentParser(add_help=False, parents=[common])
    server.add_argument("--server", type=server_type, required=True, metavar="URL", help="TrustGate base URL")
    server.add_argument("--function-key", metavar="KEY", default=os.environ.get(KEY_ENV),
                        help=f"Azure function key (default: ${KEY_ENV})")

    devices = target.add_parser("devices", help="list, suspend, resume or revoke devices").add_subparsers(
        dest="operator_action", metavar="ACTION", required=True)
    listing = devices.add_parser("list", parents=[server], help="list devices by trust level and status")
    listing.add_argument("--trust-level", choices=("software", "hardware", "strongbox", "revoked", "none"))
    listing.add_argument("--status", choices=("active", "suspended", "revoked"))
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=cmd_list_devices)
    for name, needs_reason in (("suspend", True), ("resume", False), ("revoke", True)):
        action = devices.add_parser(name, parents=[server], help=f"{name} a device")
        action.add_argument("deviceid", metavar="DEVICE_ID")
        action.add_argument("--reason", required=needs_reason, help="why (kept on the record; audited as a digest)")
        if name == "revoke":
            action.add_argument("--dry-run", action="store_true", help="report what the revocation would touch, change nothing")
        action.set_defaults(handler=cmd_device_action, operator_action=name)

    attestation = target.add_parser("attestation", help="act on devices by their attestation evidence").add_subparsers(
        dest="operator_action", metavar="ACTION", required=True)
    revoke = attestation.add_parser("revoke-intermediate", parents=[server],
                                    help="downgrade or revoke every device whose stored chain holds a certificate")
    revoke.add_argument("serial", metavar="SERIAL", help="the certificate's serial, hex (colons allowed)")
    revoke.add_argument("--action", choices=("downgrade", "revoke"), help="default: the server's ATTESTATION_REVOCATION_ACTION")
    revoke.add_argument("--reason")
    revoke.add_argument("--dry-run", action="store_true", help="report the devices it would touch, change nothing")
    revoke.set_defaults(handler=cmd_revoke_certificate)

    users = target.add_parser("users", help="suspend or resume accounts").add_subparsers(
        dest="operator_action", metavar="ACTION", required=True)
    for name, needs_reason in (("suspend", True), ("resume", False)):
        action = users.add_parser(name, parents=[server], help=f"{name} an account")
        action.add_argument("email", metavar="EMAIL")
        action.add_argument("--reason", required=needs_reason)
        action.set_defaults(handler=cmd_user_action, operator_action=name)


def _client(args: argparse.Namespace) -> OperatorClient:
    return OperatorClient(args.server, args.function_key, timeout=args.timeout)


def _print(answer: dict[str, Any], out: TextIO) -> int:
    print(json.dumps(answer, indent=2, sort_keys=True), file=out)
    return 0


def cmd_device_action(args: argparse.Namespace, out: TextIO) -> int:
    client = _client(args)
    if args.operator_action == "suspend":
        return _print(client.suspend_device(args.deviceid, args.reason), out)
    if args.operator_action == "resume":
        return _print(client.resume_device(args.deviceid, args.reason), out)
    return _print(client.revoke_device(args.deviceid, args.reason, dry_run=args.dry_run), out)


def cmd_revoke_certificate(args: argparse.Namespace, out: TextIO) -> int:
    return _print(_client(args).revoke_certificate(args.serial, args.action, args.reason, dry_run=args.dry_run), out)


def cmd_user_action(args: argparse.Namespace, out: TextIO) -> int:
    client = _client(args)
    call = client.suspend_user if args.operator_action == "suspend" else client.resume_user
    return _print(call(args.email, args.reason), out)


def cmd_list_devices(args: argparse.Namespace, out: TextIO) -> int:
    devices = list(_client(args).iter_devices(args.trust_level, args.status))
    if args.json:
        print(json.dumps({"devices": devices}, indent=2, sort_keys=True), file=out)
        return 0
    header = ("DEVICE", "STATUS", "TRUST", "KEY", "ROTATIONS", "SINCE")
    rows = [tuple(_clean(str(d.get(k) if d.get(k) is not None else "-")) for k in
                  ("deviceid", "status", "trust_level", "key_type", "key_rotations", "status_changed_at")) for d in devices]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip(), file=out)
    return 0
