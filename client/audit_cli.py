"""``python -m client audit verify|export|device``: check the server's tamper-evident audit log.

The pinned checkpoint key comes from ``--key``, ``--key-file`` or ``$TRUSTGATE_AUDIT_KEY``
(``<name>+<id>+<base64>``, the ``verifier_key`` of ``GET /audit/checkpoint``, obtained from a channel
you trust). The last accepted checkpoint is kept in ``<home>/audit/trusted.json``. Exit status 0
when every check passed, 1 when one failed (the failed check is printed: ``FAILED fork: ...``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from pathlib import Path
from typing import Any, Callable, TextIO

from client.audit_api import AuditClient
from client.audit_merkle import ProofError, leaf_hash, verify_inclusion
from client.audit_note import NoteError, VerifierKey, verify_checkpoint
from client.audit_verify import ExportSource, TrustStore, VerificationError, verify_log
from client.state import load_state, resolve_home

KEY_ENV = "TRUSTGATE_AUDIT_KEY"


def add_audit_commands(commands: Any, common: argparse.ArgumentParser, server_type: Callable[[str], str]) -> None:
    """Register ``audit verify``, ``audit export`` and ``audit device``."""
    audit = commands.add_parser("audit", help="verify the server's tamper-evident audit log",
                                description="Verify signed checkpoints, the Merkle root of every entry, and "
                                            "inclusion and consistency proofs (RFC 9162, C2SP tlog-checkpoint).")
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    keys = argparse.ArgumentParser(add_help=False)
    keys.add_argument("--key", metavar="VKEY", help=f"pinned checkpoint key (default: ${KEY_ENV})")
    keys.add_argument("--key-file", metavar="FILE", help="file holding the pinned checkpoint key")
    operator = argparse.ArgumentParser(add_help=False)
    operator.add_argument("--function-key", metavar="KEY", default=os.environ.get("TRUSTGATE_FUNCTION_KEY"),
                          help="Azure function key for the /audit endpoints (default: $TRUSTGATE_FUNCTION_KEY)")

    verify = actions.add_parser("verify", parents=[common, keys, operator], help="verify the whole log",
                                description="Check the checkpoint signature, recompute the root from the entries, "
                                            "verify proofs, and compare with the last checkpoint accepted (TOFU).")
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument("--server", type=server_type, metavar="URL", help="TrustGate base URL")
    source.add_argument("--from", dest="directory", type=Path, metavar="DIR", help="a directory written by 'audit export'")
    verify.add_argument("--full", action="store_true", help="re-read every entry, not only those after the trusted size")
    verify.set_defaults(handler=cmd_audit_verify)

    export = actions.add_parser("export", parents=[common, operator], help="save the checkpoint and entries to files",
                                description="Write checkpoint.txt and entries.jsonl to DIR for offline verification.")
    export.add_argument("--server", type=server_type, required=True, metavar="URL", help="TrustGate base URL")
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write")
    export.set_defaults(handler=cmd_audit_export)

    device = actions.add_parser("device", parents=[common, keys], help="this device's entries, each proven",
                                description="GET /api/device/audit: the entries about this device, each with its "
                                            "inclusion proof checked against the signed checkpoint.")
    device.add_argument("--json", action="store_true", help="print the entries as JSON")
    device.set_defaults(handler=cmd_audit_device)


def _key(args: argparse.Namespace) -> VerifierKey:
    from client.cli import CommandError

    text = args.key or (Path(args.key_file).read_text(encoding="utf-8") if args.key_file else os.environ.get(KEY_ENV))
    if not text:
        raise CommandError(f"pin the checkpoint key: --key, --key-file or ${KEY_ENV}")
    try:
        return VerifierKey.parse(text)
    except NoteError as exc:
        raise CommandError(f"checkpoint key: {exc}") from None


def cmd_audit_verify(args: argparse.Namespace, out: TextIO) -> int:
    key = _key(args)
    source = ExportSource(args.directory) if args.directory else AuditClient(args.server, args.function_key,
                                                                             timeout=args.timeout)
    store = TrustStore(resolve_home(args.home) / "audit")
    try:
        report = verify_log(source, key, store, full=args.full)
    except VerificationError as exc:
        print(f"FAILED {exc}", file=out)
        return 1
    cp = report.checkpoint
    previous = "first use: trusted from now on" if report.previous_size is None else \
        f"consistent with the trusted size {report.previous_size}"
    print(f"ok: {cp.origin} size {cp.size}, signature valid, root recomputed from {report.entries_checked} "
          f"entries, {previous}, {len(report.inclusion_checked)} inclusion proofs verified", file=out)
    return 0


def cmd_audit_export(args: argparse.Namespace, out: TextIO) -> int:
    client = AuditClient(args.server, args.function_key, timeout=args.timeout)
    info = client.checkpoint_info()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "checkpoint.txt").write_text(info["checkpoint"], encoding="utf-8")
    count = 0
    with open(args.out / "entries.jsonl", "w", encoding="utf-8") as handle:
        for index, entry in client.entries(0, info["size"]):
            handle.write(json.dumps({"index": index, "entry": entry}, ensure_ascii=False) + "\n")
            count += 1
    print(f"exported checkpoint of size {info['size']} and {count} entries to {args.out}", file=out)
    return 0


def cmd_audit_device(args: argparse.Namespace, out: TextIO) -> int:
    from client.cli import CommandError, _client

    key = _key(args)
    device = _client(load_state(args.home), args)
    entries, checkpoint = [], None
    continuation = None
    while True:
        page = device.audit(continuation=continuation)
        try:
            checkpoint = verify_checkpoint(page["checkpoint"], key)
        except NoteError as exc:
            raise CommandError(f"checkpoint: {exc}") from None
        for item in page.get("entries") or []:
            try:
                verify_inclusion(item["index"], checkpoint.size, leaf_hash(item["entry"].encode("utf-8")),
                                 [base64.b64decode(p) for p in item["proof"]], checkpoint.root)
            except ProofError as exc:
                print(f"FAILED inclusion of entry {item['index']}: {exc}", file=out)
                return 1
            entries.append(item)
        continuation = page.get("continuation")
        if not continuation:
            break
    if args.json:
        print(json.dumps({"size": checkpoint.size, "entries": entries}, indent=2), file=out)
    else:
        for item in entries:
            entry = json.loads(item["entry"])
            print(f"{item['index']:>8}  {entry['ts']}  {entry['event']}  {entry['outcome']}", file=out)
        print(f"{len(entries)} entries, each proven in the signed checkpoint of size {checkpoint.size}", file=out)
    return 0
