"""``python -m shared_code.devices.attestation inspect``: verify saved evidence offline.

For operators: the server's own verifier, run on a file at a given time, printing the parsed
claims and every check (``PASS``, ``FAIL`` with its reason, or ``not checked``). No network and
no settings are needed; what is not given is not checked. Exit status 0 when every check that
ran passed, 1 when one failed, 2 for usage errors.

Examples::

    python -m shared_code.devices.attestation inspect chain.pem --at 2024-09-26T22:31:25Z --challenge 6368616c6c656e6765
    python -m shared_code.devices.attestation inspect attestation.cbor --format apple-appattest \\
        --key-id 2o0syRGn1HDKDv85d522XBC9nLqrHWHGnt/mJ5hWMQM= --challenge-text wurzelpfropf \\
        --app-id 6MURL8TA57.de.vincent-haupert.apple-appattest-poc --environment development --at 2020-11-21T22:13:00Z

Android input: a PEM bundle (leaf first) or a JSON list of base64 DER certificates. Apple
input: the attestation object as raw CBOR or base64 text.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence, TextIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared_code.devices.attestation import results as r
from shared_code.devices.attestation.android import AndroidPolicy
from shared_code.devices.attestation.apple import AppleExpectations
from shared_code.devices.attestation.roots import parse_test_roots, trust_store
from shared_code.devices.attestation.status_list import StatusListUnavailable, parse_status_list
from shared_code.devices.attestation.verifier import (
    AndroidEvidence,
    AppleEvidence,
    VerifierConfig,
    parse_digest,
    verify_evidence,
)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("use ISO-8601, e.g. 2024-05-01T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _read_chain(path: Path) -> tuple[bytes, ...]:
    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        return tuple(c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(data))
    return tuple(base64.b64decode(item) for item in json.loads(data))


def _read_blob(path: Path) -> bytes:
    data = path.read_bytes()
    try:
        return base64.b64decode(data.strip(), validate=True)
    except ValueError:
        return data


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared_code.devices.attestation",
                                     description="Verify saved attestation evidence offline.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="verify one evidence file and print every check")
    inspect.add_argument("file", type=Path, help="PEM chain / JSON list (android-key) or attestation object (apple-appattest)")
    inspect.add_argument("--format", choices=(r.ANDROID_KEY, r.APPLE_APPATTEST), default=r.ANDROID_KEY)
    inspect.add_argument("--at", type=_moment, default=None, help="verification time (default: now), ISO-8601")
    challenge = inspect.add_mutually_exclusive_group()
    challenge.add_argument("--challenge", metavar="HEX", help="the challenge bytes, hex")
    challenge.add_argument("--challenge-text", metavar="TEXT", help="the challenge bytes, as UTF-8 text")
    inspect.add_argument("--package", action="append", default=[], help="android-key: accepted package (repeatable)")
    inspect.add_argument("--signer-digest", action="append", default=[], help="android-key: signer SHA-256, hex or base64 (repeatable)")
    inspect.add_argument("--strict-boot", action="store_true", help="android-key: require a locked bootloader and verified boot")
    inspect.add_argument("--min-patch-level", type=int, metavar="YYYYMM", help="android-key: oldest accepted osPatchLevel")
    inspect.add_argument("--status-list", type=Path, metavar="FILE", help="android-key: a saved attestation status list (JSON)")
    inspect.add_argument("--key-id", help="apple-appattest: the key id, base64")
    inspect.add_argument("--app-id", action="append", default=[], help="apple-appattest: TEAMID.bundle.id (repeatable)")
    inspect.add_argument("--environment", choices=("production", "development"), default="production")
    inspect.add_argument("--test-roots", type=Path, metavar="PEM", help="also trust these roots (dev stack test authority)")
    return parser


def inspect(args: argparse.Namespace, out: TextIO) -> int:
    """Verify and print; returns the exit status."""
    test_roots = args.test_roots.read_text() if args.test_roots else ""
    parse_test_roots(test_roots)
    challenge = bytes.fromhex(args.challenge) if args.challenge else (args.challenge_text or "").encode()
    at = args.at or datetime.now(timezone.utc)
    not_checked: dict[str, str] = {}
    if args.format == r.ANDROID_KEY:
        evidence = AndroidEvidence(_read_chain(args.file))
        policy = AndroidPolicy(frozenset(args.package), frozenset(parse_digest(d) for d in args.signer_digest),
                               allow_unlocked=not args.strict_boot, min_patch_level=args.min_patch_level)
        config = VerifierConfig(trust_store(test_roots), android=policy)
        refused = parse_status_list(args.status_list.read_bytes()) if args.status_list else frozenset()
        if not args.status_list:
            not_checked[r.REVOKED] = "no --status-list"
        if not args.package and not args.signer_digest:
            not_checked[r.APP_IDENTITY] = "no --package / --signer-digest"
        if args.min_patch_level is None:
            not_checked[r.PATCH_LEVEL] = "no --min-patch-level"
        order = r.ANDROID_CHECKS
    else:
        evidence = AppleEvidence(base64.b64decode(args.key_id or ""), _read_blob(args.file))
        config = VerifierConfig(trust_store(test_roots), apple=AppleExpectations(frozenset(args.app_id), args.environment))
        refused = frozenset()
        if not args.app_id:
            not_checked[r.APP_ID_MISMATCH] = "no --app-id"
        order = r.APPLE_CHECKS
    if not challenge:
        not_checked[r.CHALLENGE_MISMATCH if args.format == r.ANDROID_KEY else r.NONCE_MISMATCH] = "no --challenge"
    result = verify_evidence(evidence, challenge, config, at, refused)
    print(f"format:      {result.format}\nverified at: {at.isoformat()}", file=out)
    print("claims:      " + json.dumps(result.claims, indent=2, sort_keys=True).replace("\n", "\n             "), file=out)
    if result.parsed:
        print("parsed:      " + json.dumps(result.parsed, indent=2).replace("\n", "\n             "), file=out)
    print("checks:", file=out)
    failed = False
    for check in order:
        if check in not_checked:
            print(f"  {check:<22} not checked ({not_checked[check]})", file=out)
        elif check in result.failed_checks:
            failed = True
            print(f"  {check:<22} FAIL  {result.reasons[check]}", file=out)
        else:
            print(f"  {check:<22} PASS", file=out)
    level = result.trust_level if not failed else None
    if not failed and result.failed_checks:  # only unchecked names failed
        level = "strongbox" if result.claims.get("keymint_security_level") == "STRONG_BOX" else "hardware"
    print(f"trust level: {level or 'none (refused)'}", file=out)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return inspect(args, out or sys.stdout)
    except (OSError, ValueError, StatusListUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
