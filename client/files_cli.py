"""``python -m client files put|get|grant|revoke|rotate|ls``: the encrypted store from the command line.

Files are encrypted on this machine before upload and decrypted after download
(:mod:`client.envelope`); the server only ever holds ciphertext. The session is read from
``<home>/session.json`` (``python -m client user login``), or given with ``--sid`` / ``$TRUSTGATE_SID``
(then ``--server`` or the session file names the server). The session id is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from client.device_api import DEFAULT_TIMEOUT
from client.envelope import EnvelopeError
from client.files_api import SID_ENV, FilesClient, load_session
from client.state import StateError


def add_store_commands(files: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the ``put|get|grant|revoke|rotate|ls`` actions under the ``files`` command (without an action,
    ``files`` keeps listing the device's uploads)."""
    session = argparse.ArgumentParser(add_help=False, parents=[common])
    session.add_argument("--sid", help=f"session id (default: ${SID_ENV}, else <home>/session.json)")
    session.add_argument("--server", metavar="URL", help="server URL (default: from <home>/session.json)")
    actions = files.add_subparsers(dest="files_command", metavar="ACTION", required=False)

    put = actions.add_parser("put", parents=[session], help="encrypt a file here and upload it to the encrypted store")
    put.add_argument("path", type=Path, metavar="FILE")
    put.add_argument("--name", metavar="FILE_NAME", help="name in the store (default: the file's base name)")
    put.set_defaults(handler=cmd_put)

    get = actions.add_parser("get", parents=[session], help="download a file, decrypt it and verify it")
    get.add_argument("file_name", metavar="FILE_NAME")
    get.add_argument("-o", "--output", type=Path, metavar="PATH", help="where to write it (default: ./FILE_NAME)")
    get.add_argument("--force", action="store_true", help="replace an existing output file")
    get.add_argument("--export-private-key", action="store_true",
                     help="fetch the file's private key and unwrap here (the seed's /get_private_key) "
                          "instead of having the KMS unwrap the data key (/unwrap_key, the default)")
    get.set_defaults(handler=cmd_get)

    rotate = actions.add_parser("rotate", parents=[session],
                                help="rotate a file's key: new key version, re-encrypt the stored file, retire the old versions")
    rotate.add_argument("file_name", metavar="FILE_NAME")
    rotate.add_argument("--keep-old-versions", action="store_true",
                        help="leave the older key versions usable for decryption (retire them later by rotating again)")
    rotate.set_defaults(handler=cmd_rotate)

    for verb, handler, text in (("grant", cmd_grant, "let a registered user fetch the file's key"),
                                ("revoke", cmd_revoke, "withdraw a user's access at once")):
        action = actions.add_parser(verb, parents=[session], help=text)
        action.add_argument("file_name", metavar="FILE_NAME")
        action.add_argument("email", metavar="EMAIL")
        action.set_defaults(handler=handler)

    ls = actions.add_parser("ls", parents=[session], help="list the files you own or were granted")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(handler=cmd_ls)


def files_client(args: argparse.Namespace) -> FilesClient:
    """The client for the session named by ``--sid`` / ``$TRUSTGATE_SID`` / ``session.json``.

    Raises :class:`StateError` when no session or no server is known.
    """
    sid = args.sid or os.environ.get(SID_ENV)
    timeout = getattr(args, "timeout", DEFAULT_TIMEOUT)
    if sid:
        server = args.server
        if not server:
            server = load_session(args.home).server
        return FilesClient(server, sid, timeout=timeout)
    saved = load_session(args.home)
    return FilesClient(args.server or saved.server, saved.sid, timeout=timeout)


def cmd_put(args: argparse.Namespace, out: TextIO) -> int:
    if not args.path.is_file():
        raise StateError(f"{args.path}: not a readable file (nothing was uploaded)")
    name = args.name or args.path.name
    return _guarded(lambda: files_client(args).put_file(args.path, name),
                    lambda _: print(f"encrypted and uploaded {args.path} as {_clean(name)}", file=out))


def cmd_get(args: argparse.Namespace, out: TextIO) -> int:
    target = args.output or Path(Path(args.file_name).name)
    if target.exists() and not args.force:
        raise StateError(f"{target} exists; use --force to replace it")
    return _guarded(lambda: files_client(args).get_file(args.file_name, target, export_private_key=args.export_private_key),
                    lambda path: print(f"decrypted and verified {_clean(args.file_name)} -> {path}", file=out))


def cmd_rotate(args: argparse.Namespace, out: TextIO) -> int:
    keep = args.keep_old_versions
    return _guarded(lambda: files_client(args).rotate_file(args.file_name, retire=not keep),
                    lambda version: print(f"rotated {_clean(args.file_name)} to key version {version}"
                                          f"{' (older versions still usable)' if keep else ', older versions retired'}", file=out))


def cmd_grant(args: argparse.Namespace, out: TextIO) -> int:
    files_client(args).grant(args.file_name, args.email)
    print(f"granted {_clean(args.email)} access to {_clean(args.file_name)}", file=out)
    return 0


def cmd_revoke(args: argparse.Namespace, out: TextIO) -> int:
    files_client(args).revoke(args.file_name, args.email)
    print(f"revoked {_clean(args.email)}'s access to {_clean(args.file_name)}", file=out)
    return 0


def cmd_ls(args: argparse.Namespace, out: TextIO) -> int:
    entries: list[dict[str, Any]] = files_client(args).list_files().get("entries") or []
    if args.json:
        print(json.dumps(entries, indent=2), file=out)
    elif not entries:
        print("no files", file=out)
    else:
        for entry in entries:
            role, owner = _clean(str(entry.get("role", ""))), _clean(str(entry.get("owner", "")))
            print(f"{role:<8} {owner:<32} {_clean(str(entry.get('file_name', '')))}", file=out)
    return 0


def _guarded(action, report) -> int:
    """Run ``action``; a local crypto failure is an error (exit 1), never a written file."""
    try:
        result = action()
    except EnvelopeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report(result)
    return 0


def _clean(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)
