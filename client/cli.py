"""``python -m client``: the TrustGate device command line.

Exit status: 0 on success, 1 when the server refuses a request, cannot be reached, or local
state is missing, 2 for usage errors (argparse). Server errors are printed to stderr as
``error: <message> (<status>): <detail>``. The device token and private key are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError
from tqdm import tqdm

from client.device_api import DEFAULT_TIMEOUT, ClientError, DeviceClient, TransportError
from client.direct_upload import DEFAULT_CONCURRENCY, DirectUploadResult, direct_upload
from client.files_cli import add_store_commands
from client.keys import DEFAULT_KEY_TYPE, KEY_TYPES, generate_private_key, public_key_fingerprint, public_key_pem
from client.state import (
    DeviceState,
    StateError,
    default_key_path,
    load_private_key,
    load_state,
    resolve_home,
    save_private_key,
    save_state,
    state_path,
)
from client.user_cli import add_user_commands

DIRECT_THRESHOLD = 8 * 1024 * 1024

# Same rule as the server: 1-128 of [A-Za-z0-9._:-], not only dots.
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")

EPILOG = """\
typical first run:
  python -m client device init --server http://localhost:7071
  python -m client device register
  python -m client device attest
  python -m client upload report.pdf photo.jpg
  python -m client files --all
  python -m client device status
  python -m client integrity verify --token-file token.txt

state lives in --home DIR, else $TRUSTGATE_HOME, else ~/.trustgate
(device.json and device_key.pem, both mode 0600).
"""


class CommandError(Exception):
    """A local problem that ends the command with exit status 1 (message printed as ``error: …``)."""


# -- argument types ---------------------------------------------------------------------------

def _device_id(value: str) -> str:
    if not DEVICE_ID_PATTERN.fullmatch(value) or set(value) == {"."}:
        raise argparse.ArgumentTypeError("must be 1-128 characters of A-Z a-z 0-9 . _ : - and not only dots")
    return value


def _server_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError("must be an http:// or https:// URL, e.g. http://localhost:7071")
    return value.rstrip("/")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _byte_size(value: str) -> int:
    units = {"": 1, "b": 1, "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3}
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", value)
    if not match or match.group(2).lower() not in units:
        raise argparse.ArgumentTypeError(f"{value!r} is not a size such as 8388608, 8MiB or 64MB")
    return int(match.group(1)) * units[match.group(2).lower()]


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


# -- parser -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The ``python -m client`` argument parser (subcommands ``device``, ``upload``, ``files``, ``integrity``)."""
    parser = argparse.ArgumentParser(
        prog="python -m client",
        description="TrustGate device client: register and attest this device, upload signed files, list them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", metavar="DIR",
                        help="state directory (default: $TRUSTGATE_HOME, else ~/.trustgate)")
    parser.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"timeout per HTTP request (default: {DEFAULT_TIMEOUT:g})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # --home is also accepted after the subcommand; SUPPRESS keeps the top-level value otherwise.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    device = commands.add_parser("device", help="create, register, attest or show this device",
                                 description="Manage this device's identity: its key, token and server.")
    device_commands = device.add_subparsers(dest="device_command", metavar="ACTION", required=True)

    init = device_commands.add_parser(
        "init", parents=[common], help="generate a device key and token and save them locally",
        description="Generate a device key and a random device token, and save them in the state directory. "
                    "Nothing is sent to the server: run 'device register' next.")
    init.add_argument("--server", required=True, type=_server_url, metavar="URL",
                      help="TrustGate base URL, e.g. http://localhost:7071")
    init.add_argument("--device-id", type=_device_id, metavar="ID",
                      help="device id (default: dev-<random hex>)")
    init.add_argument("--key-type", choices=KEY_TYPES, default=DEFAULT_KEY_TYPE,
                      help=f"device key algorithm (default: {DEFAULT_KEY_TYPE})")
    init.add_argument("--force", action="store_true", help="replace an existing device in the state directory")
    init.set_defaults(handler=cmd_device_init)

    register = device_commands.add_parser("register", parents=[common],
                                          help="register the device id and token with the server",
                                          description="POST /register-device with this device's id and token.")
    register.set_defaults(handler=cmd_device_register)

    attest = device_commands.add_parser(
        "attest", parents=[common], help="bind the device key to the device on the server",
        description="Fetch a challenge, sign 'attest:{challenge}' with the device key and POST /attest-device. "
                    "With --format android-key or apple-appattest and --simulate (DEV ONLY), send the evidence a "
                    "real device would, built under the dev stack's test attestation authority.")
    add_evidence_arguments(attest)
    attest.set_defaults(handler=cmd_device_attest)

    show = device_commands.add_parser("show", parents=[common],
                                      help="show the saved device (never the token or private key)",
                                      description="Show the saved device: server, id, key type and fingerprint.")
    show.add_argument("--public-key", action="store_true", help="also print the public key (PEM)")
    show.set_defaults(handler=cmd_device_show)

    upload = commands.add_parser(
        "upload", parents=[common], help="upload files, each signed with the device key",
        description="For each file: hash it, fetch a fresh challenge, sign "
                    "'upload:{challenge}:{sha256}' and stream it to POST /upload-file. Files larger than "
                    "--direct-threshold go straight to Blob Storage instead: sign "
                    "'direct-upload:{challenge}:{sha256}:{size}:{type}', POST /api/uploads, send the blocks to "
                    "the granted URL, and wait until the server has verified them.")
    upload.add_argument("files", nargs="+", type=Path, metavar="FILE", help="file(s) to upload")
    upload.add_argument("--content-type", metavar="TYPE",
                        help="content type for every file (default: guessed from the extension, "
                             "else application/octet-stream)")
    upload.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    upload.add_argument("--direct-threshold", type=_byte_size, default=DIRECT_THRESHOLD, metavar="BYTES",
                        help="files larger than this go by the direct path (default: 8MiB; suffixes KiB, MiB, GiB)")
    upload.add_argument("--concurrency", type=_positive_int, default=DEFAULT_CONCURRENCY, metavar="N",
                        help=f"blocks sent at once on the direct path (default: {DEFAULT_CONCURRENCY})")
    upload.add_argument("--resume", action="store_true",
                        help="continue this file's interrupted direct upload: send only the blocks not yet staged")
    upload.set_defaults(handler=cmd_upload)

    files = commands.add_parser("files", parents=[common], help="list this device's files, newest first",
                                description="Without ACTION: list this device's uploaded files (GET /api/files), newest first. "
                                            "With ACTION: the encrypted store (client-side AES-256-GCM, keys from the KMS).")
    files.add_argument("--all", action="store_true", help="follow continuation tokens and list every file")
    files.add_argument("--page-size", type=_positive_int, metavar="N",
                       help="files per request (server default if omitted)")
    files.add_argument("--continuation", metavar="TOKEN", help="start from this continuation token")
    files.add_argument("--json", action="store_true", help="print JSON instead of a table")
    files.set_defaults(handler=cmd_files)
    add_store_commands(files, common)
    add_user_commands(commands, common, _server_url)
    from client.gather_cli import add_gather_parser  # imported here: gather_cli builds on this module

    add_gather_parser(commands, common)
    from client.integrity_cli import add_integrity_commands  # here: it imports this module's helpers

    add_integrity_commands(commands, device_commands, common)
    from client.audit_cli import add_audit_commands  # here: it imports this module's helpers

    add_audit_commands(commands, common, _server_url)
    from client.lifecycle_cli import add_lifecycle_commands  # here: it imports this module's helpers
    from client.operator_cli import add_operator_commands

    add_lifecycle_commands(device_commands, common)
    add_operator_commands(commands, common, _server_url)
    return parser


# -- commands ---------------------------------------------------------------------------------

def cmd_device_init(args: argparse.Namespace, out: TextIO) -> int:
    """Create the key and state files; refuse to replace an existing device without --force."""
    home = resolve_home(args.home)
    existing = state_path(home)
    key_path = default_key_path(home).resolve()
    if not args.force and (existing.exists() or key_path.exists()):
        raise CommandError(f"a device already exists in {home}; use --force to replace it "
                           "(the old key and token are lost)")
    deviceid = args.device_id or f"dev-{secrets.token_hex(8)}"
    private_key = generate_private_key(args.key_type)
    save_private_key(private_key, key_path)
    state = DeviceState(server=args.server, deviceid=deviceid, device_token=secrets.token_urlsafe(32),
                        key_path=str(key_path), key_type=args.key_type)
    path = save_state(state, home)
    print(f"created device {deviceid} ({args.key_type} key) for {args.server}", file=out)
    print(f"state saved in {path.parent}", file=out)
    print("next: python -m client device register", file=out)
    return 0


def cmd_device_register(args: argparse.Namespace, out: TextIO) -> int:
    state = load_state(args.home)
    result = _client(state, args).register()
    state.registered_at = _now()
    save_state(state, args.home)
    print(f"registered device {_clean(str(result.get('deviceid', state.deviceid)))} with {state.server}", file=out)
    return 0


def cmd_device_attest(args: argparse.Namespace, out: TextIO) -> int:
    state = load_state(args.home)
    client = _client(state, args)
    if args.format == "key":
        result = client.attest()
    elif not args.simulate:
        raise CommandError(f"--format {args.format} needs a device's secure hardware; on this computer add --simulate "
                           "(dev stack only)")
    else:
        result = _attest_simulated(client, args)
    state.attested_at = _now()
    state.attestation_format = args.format
    if client.app_attest is not None:
        state.app_id, state.assertion_counter = client.app_attest.app_id, client.app_attest.counter
    save_state(state, args.home)
    key_type = _clean(str(result.get("key_type", state.key_type)))
    trust = _clean(str(result.get("trust_level", "software")))
    print(f"attested device {state.deviceid} (key type {key_type}, format {args.format}, trust level {trust})", file=out)
    return 0


def _attest_simulated(client: DeviceClient, args: argparse.Namespace) -> dict[str, Any]:
    from client import attestation_sim as sim  # dev-only dependencies

    authority, options = simulation(args)
    try:
        return client.attest_simulated(authority, args.format, **options)
    except (sim.SimulationError, ValueError) as error:
        raise CommandError(str(error)) from None


def add_evidence_arguments(parser: argparse.ArgumentParser) -> None:
    """``--format`` and the ``--simulate`` options of ``device attest`` (and ``device rotate-key``)."""
    parser.add_argument("--format", choices=("key", "android-key", "apple-appattest"), default="key",
                        help="attestation format (default: key, a proof of possession)")
    parser.add_argument("--simulate", action="store_true",
                        help="build hardware evidence under the test authority (the only way on a computer)")
    parser.add_argument("--test-authority", metavar="DIR", type=Path,
                        help="the dev stack's test authority (default: $TRUSTGATE_TEST_AUTHORITY, else ./.devhost/test-authority)")
    parser.add_argument("--security-level", choices=("tee", "strongbox"), default="tee", help="android-key: TEE or StrongBox")
    parser.add_argument("--provisioning", choices=("factory", "remote"), default="factory",
                        help="android-key: factory-provisioned or remotely provisioned (RKP) chain")
    parser.add_argument("--package", help="android-key: package name (default: the dev stack's)")
    parser.add_argument("--signer-digest", metavar="HEX", help="android-key: SHA-256 of the app signing certificate")
    parser.add_argument("--app-id", help="apple-appattest: TEAMID.bundle.id (default: the dev stack's)")


def simulation(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """DEV ONLY: the test authority and the evidence options ``--simulate`` asks for (see
    :func:`client.device_api.simulated_evidence`). Raises :class:`CommandError`."""
    from client import attestation_sim as sim  # dev-only dependencies

    try:
        authority = sim.TestAuthority.load(args.test_authority or sim.default_authority_dir())
        if args.format == "android-key":
            digest = bytes.fromhex(args.signer_digest) if args.signer_digest else sim.DEV_SIGNER_DIGEST
            return authority, {"package": args.package or sim.DEV_PACKAGE, "signature_digest": digest,
                               "security_level": args.security_level, "provisioning": args.provisioning}
        return authority, {"app_id": args.app_id or sim.DEV_APP_ID}
    except (sim.SimulationError, ValueError) as error:
        raise CommandError(str(error)) from None


def cmd_device_show(args: argparse.Namespace, out: TextIO) -> int:
    state = load_state(args.home)
    private_key = load_private_key(state.key_path)
    rows = [
        ("server", state.server),
        ("deviceid", state.deviceid),
        ("key type", state.key_type),
        ("key file", state.key_path),
        ("public key", public_key_fingerprint(private_key)),
        ("registered", state.registered_at or "no"),
        ("attested", state.attested_at or "no"),
        ("state", str(state_path(args.home))),
    ]
    for label, value in rows:
        print(f"{label + ':':<12} {value}", file=out)
    if args.public_key:
        print(public_key_pem(private_key), end="", file=out)
    return 0


def cmd_upload(args: argparse.Namespace, out: TextIO) -> int:
    """Upload each file; a refused file is reported and the rest still go. Exit 1 if any failed."""
    for path in args.files:
        if not path.is_file() or not os.access(path, os.R_OK):
            raise CommandError(f"{path}: not a readable file (nothing was uploaded)")
    state = load_state(args.home)
    client = _client(state, args)
    failed = 0
    for path in args.files:
        direct = args.resume or path.stat().st_size > args.direct_threshold
        try:
            if direct:
                outcome = _direct_upload_one(client, path, args)
                state = outcome.state
                line = (f"{path}: {_clean(str(state.get('state')))} upload_id={_clean(outcome.upload_id)} "
                        f"size={_clean(str(state.get('size')))} sha256={_clean(str(state.get('sha256')))} "
                        f"(blocks sent {outcome.blocks_sent}, already staged {outcome.blocks_skipped}; "
                        f"transfer {outcome.transfer_seconds:.1f} s, verified {outcome.verification_seconds:.1f} s after the commit)")
                if state.get("state") != "verified":
                    print(line, file=sys.stderr)
                    failed += 1
                    continue
                print(f"uploaded {line}", file=out)
                continue
            result = _upload_one(client, path, args.content_type, show_progress=not args.no_progress)
        except ClientError as error:
            print(f"{path}: upload refused", file=sys.stderr)
            _print_client_error(error)
            failed += 1
            continue
        except AzureError as error:
            print(f"{path}: Blob Storage refused the upload ({error.__class__.__name__}); "
                  "run again with --resume to continue it", file=sys.stderr)
            failed += 1
            continue
        except OSError as error:
            print(f"error: {path}: {error.strerror or error}", file=sys.stderr)
            failed += 1
            continue
        print(f"uploaded {path}: file_id={_clean(str(result.get('file_id')))} size={_clean(str(result.get('size')))} "
              f"sha256={_clean(str(result.get('sha256')))}", file=out)
    if client.app_attest is not None:  # keep the assertion counter for the next run
        state.assertion_counter = client.app_attest.counter
        save_state(state, args.home)
    if failed:
        print(f"{failed} of {len(args.files)} file(s) failed", file=sys.stderr)
        return 1
    return 0


def _upload_one(client: DeviceClient, path: Path, content_type: str | None, show_progress: bool) -> dict[str, Any]:
    bars: list[tqdm] = []  # made on the first callback, after hashing, so the rate shown is the upload's

    def progress(sent: int, total: int) -> None:
        if not bars:
            # disable=None lets tqdm hide the bar when stderr is not a terminal.
            bars.append(tqdm(desc=path.name, total=total, unit="B", unit_scale=True, unit_divisor=1024,
                             leave=False, file=sys.stderr, disable=None if show_progress else True))
        bars[0].update(sent - bars[0].n)

    try:
        return client.upload(path, content_type=content_type, progress=progress)
    finally:
        for bar in bars:
            bar.close()


def _direct_upload_one(client: DeviceClient, path: Path, args: argparse.Namespace) -> DirectUploadResult:
    bars: dict[str, tqdm] = {}

    def bar(kind: str, done: int, total: int) -> None:
        if kind not in bars:
            for other in bars.values():
                other.close()
            bars[kind] = tqdm(desc=f"{path.name} ({kind})", total=total, unit="B", unit_scale=True, unit_divisor=1024,
                              leave=False, file=sys.stderr, disable=None if not args.no_progress else True)
        bars[kind].update(done - bars[kind].n)

    try:
        return direct_upload(client, path, content_type=args.content_type, home=args.home, resume=args.resume,
                             concurrency=args.concurrency, progress=lambda d, t: bar("upload", d, t),
                             hash_progress=lambda d, t: bar("hash", d, t))
    finally:
        for progress_bar in bars.values():
            progress_bar.close()


def cmd_files(args: argparse.Namespace, out: TextIO) -> int:
    state = load_state(args.home)
    client = _client(state, args)
    if args.all:
        files = list(client.iter_files(page_size=args.page_size, continuation=args.continuation))
        continuation = None
    else:
        page = client.list_files(page_size=args.page_size, continuation=args.continuation)
        files, continuation = page.get("files") or [], page.get("continuation")
    if args.json:
        print(json.dumps({"files": files, "continuation": continuation}, indent=2), file=out)
        return 0
    _print_table(files, out)
    if continuation:
        print(f"more files: use --all, or --continuation {_clean(continuation)}", file=sys.stderr)
    return 0


def _print_table(files: list[dict[str, Any]], out: TextIO) -> None:
    if not files:
        print("no files", file=out)
        return
    header = ("UPLOADED", "SIZE", "STATUS", "CONTENT TYPE", "NAME", "FILE ID")
    rows = [tuple(_clean(str(f.get(key, ""))) for key in
                  ("uploaded_at", "size", "status", "content_type", "name", "file_id")) for f in files]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell.rjust(widths[i]) if i == 1 else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        print("  ".join(cells).rstrip(), file=out)


# -- helpers ----------------------------------------------------------------------------------

def _client(state: DeviceState, args: argparse.Namespace) -> DeviceClient:
    return DeviceClient.from_state(state, timeout=args.timeout)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clean(text: str) -> str:
    """Server- or device-supplied text made safe for a terminal (no control/escape characters)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _print_client_error(error: ClientError) -> None:
    message = f"error: {_clean(error.message)} ({error.status})"
    if error.detail:
        message += f": {_clean(error.detail)}"
    print(message, file=sys.stderr)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Usage errors exit via :class:`SystemExit` (status 2) from argparse.
    """
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, TextIO], int] = args.handler
    try:
        return handler(args, out)
    except ClientError as error:
        _print_client_error(error)
    except (TransportError, StateError, CommandError) as error:
        print(f"error: {error}", file=sys.stderr)
    except OSError as error:
        print(f"error: {error.filename + ': ' if error.filename else ''}{error.strerror or error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1
