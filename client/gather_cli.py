"""``python -m client gather SERVER``: the message gatherer's client (seed 003).

Interactive (no ``--user``): asks for a username and a password (no echo), then sends each line
typed as a message until ``exit``. Commands start with ``/``: ``/user NAME``, ``/server URL``,
``/read``, ``/help``, ``/exit``; the message ``logout`` ends the session on the server.

Non-interactive (``--user NAME``): the password is the first line of stdin with
``--password-stdin`` (else it is asked for without echo); messages are the lines of ``--file``,
or the remaining lines of stdin; empty lines are skipped. ``--read`` prints the user's messages
(oldest first, ``--json`` for one JSON object per line) after sending. The session is logged out
at the end either way.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Iterable, Iterator, TextIO

from client.cli import CommandError, _clean, _positive_int, _print_client_error, _server_url
from client.device_api import ClientError, TransportError
from client.gather_api import LOGOUT, GatherClient

HELP = """\
commands:
  /user NAME     log out and continue as another user (asks for the password)
  /server URL    log out and continue on another server
  /read          show your messages, oldest first
  /help          this help
  exit, /exit    log out and quit
anything else is sent as a message; the message 'logout' ends the session on the server."""

# Seams for tests: the interactive prompts.
prompt_line = input
prompt_password = getpass.getpass


def add_gather_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the ``gather`` subcommand on the ``python -m client`` parser."""
    gather = commands.add_parser(
        "gather", parents=[common], help="send messages to the message gatherer (interactive or from a file)",
        description="Identify, authenticate and send messages to a TrustGate message gatherer. Without "
                    "--user it is interactive; with --user it sends the lines of --file or stdin.",
        epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    gather.add_argument("server", type=_server_url, metavar="SERVER", help="TrustGate base URL, e.g. http://localhost:7071")
    gather.add_argument("--user", metavar="NAME", help="username (1-32 of A-Z a-z 0-9 . _ -): non-interactive mode")
    gather.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    gather.add_argument("--file", type=Path, metavar="FILE", help="send each non-empty line of FILE (default: stdin)")
    gather.add_argument("--read", action="store_true", help="print the user's messages, oldest first (after sending --file)")
    gather.add_argument("--json", action="store_true", help="with --read: one JSON object {id, ts, message} per line")
    gather.add_argument("--page-size", type=_positive_int, metavar="N", help="messages per request when reading")
    gather.set_defaults(handler=cmd_gather)


def cmd_gather(args: argparse.Namespace, out: TextIO) -> int:
    """Run the gather client in the mode the arguments select; returns the exit status."""
    if args.user is None:
        if args.password_stdin or args.file or args.read:
            raise CommandError("--password-stdin, --file and --read need --user")
        return _interactive(GatherClient(args.server, timeout=args.timeout), out)
    if args.file is not None and not args.file.is_file():
        raise CommandError(f"{args.file}: not a readable file (nothing was sent)")
    password = _stdin_line() if args.password_stdin else prompt_password(f"password for {args.user}: ")
    client = GatherClient(args.server, timeout=args.timeout)
    client.login(args.user, password)
    try:
        if args.file is not None or not args.read:
            sent = _send_lines(client, _message_lines(args.file))
            print(f"sent {sent} message(s) as {args.user} to {args.server}", file=sys.stderr)
        if args.read:
            _print_messages(client.iter_messages(page_size=args.page_size), out, as_json=args.json)
    finally:
        if client.authenticated:
            client.logout()
    return 0


# -- non-interactive ------------------------------------------------------------------------------

def _stdin_line() -> str:
    line = sys.stdin.readline()
    if not line:
        raise CommandError("--password-stdin: stdin is empty")
    return line.rstrip("\r\n")


def _message_lines(path: Path | None) -> Iterator[str]:
    if path is None:
        yield from (line.rstrip("\r\n") for line in sys.stdin)
        return
    with path.open(encoding="utf-8") as handle:
        yield from (line.rstrip("\r\n") for line in handle)


def _send_lines(client: GatherClient, lines: Iterable[str]) -> int:
    sent = 0
    for line in lines:
        if line:
            client.send(line)
            sent += 1
    return sent


def _print_messages(messages: Iterable[dict], out: TextIO, as_json: bool) -> None:
    for item in messages:
        if as_json:
            print(json.dumps(item, ensure_ascii=False), file=out)
        else:
            print(f"{_clean(str(item.get('ts', '')))}  {_clean(str(item.get('message', '')))}", file=out)


# -- interactive ----------------------------------------------------------------------------------

def _interactive(client: GatherClient, out: TextIO) -> int:
    print(f"TrustGate message gatherer on {client.server_url}. /help for commands, exit to quit.", file=out)
    try:
        while True:
            if not client.authenticated:
                username = prompt_line("username: ").strip()
                if username in ("exit", "/exit"):
                    return 0
                if username in ("help", "/help"):
                    print(HELP, file=out)
                    continue
                _login(client, username, out)
                continue
            line = prompt_line(f"{client.username}> ")
            if line.strip() in ("exit", "/exit", "/quit"):
                return 0
            client = _handle_line(client, line, out)
    except EOFError:
        return 0
    finally:
        _quietly_logout(client)


def _login(client: GatherClient, username: str, out: TextIO) -> None:
    if not username:
        return
    try:
        result = client.identify(username)
        print(f"{_clean(username)}: {'new user, ' if result.get('code') == 201 else ''}identified", file=out)
        client.authenticate(username, prompt_password("password: "))
        print(f"{_clean(username)}: authenticated; type messages, /help for commands", file=out)
    except (ClientError, TransportError) as error:
        _report(error)


def _handle_line(client: GatherClient, line: str, out: TextIO) -> GatherClient:
    """Act on one line typed while authenticated; returns the client to use next."""
    command, _, argument = line.strip().partition(" ")
    try:
        if command in ("/help", "help"):
            print(HELP, file=out)
        elif command == "/read":
            _print_messages(client.iter_messages(), out, as_json=False)
        elif command == "/user":
            _quietly_logout(client)
            _login(client, argument.strip(), out)
        elif command == "/server":
            _quietly_logout(client)
            client = GatherClient(_server_url(argument.strip()), timeout=client.timeout)
            print(f"now on {client.server_url}", file=out)
        elif line:
            result = client.send(line)
            print("logged out" if line == LOGOUT else f"stored {_clean(str(result.get('id')))}", file=out)
    except argparse.ArgumentTypeError as error:
        print(f"error: {error}", file=sys.stderr)
    except (ClientError, TransportError) as error:
        _report(error)
        if isinstance(error, ClientError) and error.status in (401, 409):
            client = GatherClient(client.server_url, session=client.session, timeout=client.timeout)
    return client


def _quietly_logout(client: GatherClient) -> None:
    if client.authenticated:
        try:
            client.logout()
        except (ClientError, TransportError):
            pass  # the token expires on its own; nothing to tell a user who is leaving


def _report(error: Exception) -> None:
    if isinstance(error, ClientError):
        _print_client_error(error)
    else:
        print(f"error: {error}", file=sys.stderr)
