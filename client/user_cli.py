"""``python -m client user register | verify | login | logout``: accounts with an emailed code.

- ``user register --server URL --email EMAIL`` asks for a password (twice; or one line from
  stdin with ``--password-stdin``) and has a registration code mailed;
- ``user login --server URL --email EMAIL`` checks the password and has a login code mailed;
- ``user verify [--otp CODE]`` finishes whichever of the two waits for its code (the code is
  prompted for when ``--otp`` is not given); after a login it saves the session in
  ``<home>/session.json`` (mode 0600) for the ``files`` commands;
- ``user logout`` ends the session on the server and deletes ``session.json``;
- ``user delete`` deletes the account for good (:mod:`client.lifecycle_cli`).

When stdin is a terminal, ``register`` and ``login`` prompt for the code at once. Passwords,
codes and the session id are never printed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, Callable, TextIO

from client.device_api import ClientError
from client.session_store import (
    PendingOtp,
    clear_pending,
    delete_session,
    load_pending,
    load_session,
    save_pending,
    save_session,
    session_path,
)
from client.state import StateError
from client.user_api import UserClient


def add_user_commands(commands: Any, common: argparse.ArgumentParser, server_type: Callable[[str], str]) -> None:
    """Add the ``user`` command and its actions to the ``python -m client`` subparsers."""
    user = commands.add_parser("user", help="register, log in (password + mailed code) and log out",
                               description="Manage your account on a TrustGate server.")
    actions = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    for name, purpose_help in (("register", "create an account; a registration code is mailed to you"),
                               ("login", "check your password; a login code is mailed to you")):
        action = actions.add_parser(name, parents=[common], help=purpose_help, description=purpose_help + ".")
        action.add_argument("--server", required=True, type=server_type, metavar="URL",
                            help="TrustGate base URL, e.g. http://localhost:7071")
        action.add_argument("--email", required=True, help="your email address")
        action.add_argument("--password-stdin", action="store_true",
                            help="read the password from the first line of stdin instead of prompting")
        action.set_defaults(handler=cmd_user_register if name == "register" else cmd_user_login)
    verify = actions.add_parser("verify", parents=[common], help="enter the mailed code (finishes register or login)",
                                description="Finish the pending registration or login with the code from the mail; "
                                            "after a login the session is saved in <home>/session.json.")
    verify.add_argument("--otp", metavar="CODE", help="the 6-digit code (prompted for when omitted)")
    verify.set_defaults(handler=cmd_user_verify)
    logout = actions.add_parser("logout", parents=[common], help="end the session and forget it",
                                description="POST /logout with the saved session, then delete session.json.")
    logout.set_defaults(handler=cmd_user_logout)
    from client.lifecycle_cli import add_user_delete  # here: it builds on client.cli, which imports this module

    add_user_delete(actions, common)


def _read_password(args: argparse.Namespace, confirm: bool) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if confirm and getpass.getpass("password again: ") != password:
            raise StateError("the passwords do not match (nothing was sent)")
    if not password:
        raise StateError("empty password (nothing was sent)")
    return password


def _client(server: str, args: argparse.Namespace) -> UserClient:
    return UserClient(server, timeout=args.timeout)


def _start(args: argparse.Namespace, out: TextIO, purpose: str) -> int:
    password = _read_password(args, confirm=purpose == "register")
    email = args.email.strip()
    client = _client(args.server, args)
    if purpose == "register":
        client.register(email, password)
    else:
        client.login(email, password)
    save_pending(PendingOtp(args.server, email, purpose), args.home)
    print(f"a {'registration' if purpose == 'register' else 'login'} code was mailed to {email}", file=out)
    if sys.stdin.isatty() and not args.password_stdin:
        return _finish(args, out, input("code from the mail: ").strip())
    print("next: python -m client user verify --otp CODE", file=out)
    return 0


def cmd_user_register(args: argparse.Namespace, out: TextIO) -> int:
    """POST /register, remember the pending step, and take the code if interactive."""
    return _start(args, out, "register")


def cmd_user_login(args: argparse.Namespace, out: TextIO) -> int:
    """POST /login, remember the pending step, and take the code if interactive."""
    return _start(args, out, "login")


def cmd_user_verify(args: argparse.Namespace, out: TextIO) -> int:
    """Finish the pending registration or login with ``--otp`` or a prompted code."""
    code = args.otp if args.otp is not None else input("code from the mail: ").strip()
    return _finish(args, out, code)


def _finish(args: argparse.Namespace, out: TextIO, code: str) -> int:
    pending = load_pending(args.home)
    client = _client(pending.server, args)
    if pending.purpose == "register":
        client.verify_register(pending.email, code)
        clear_pending(args.home)
        print(f"registered {pending.email}; next: python -m client user login --server {pending.server} "
              f"--email {pending.email}", file=out)
        return 0
    sid = client.verify_login(pending.email, code).get("sid")
    if not isinstance(sid, str) or not sid:
        raise ClientError(200, "invalid_response", "the server sent no session id")
    path = save_session(pending.server, pending.email.lower(), sid, args.home)
    clear_pending(args.home)
    print(f"logged in as {pending.email.lower()}; session saved in {path}", file=out)
    return 0


def cmd_user_logout(args: argparse.Namespace, out: TextIO) -> int:
    """End the saved session on the server and delete ``session.json`` (also when the server says
    it had already ended)."""
    saved = load_session(args.home)
    try:
        _client(saved.server, args).logout(saved.sid)
        message = f"logged out {saved.email}"
    except ClientError as error:
        if error.status != 403:
            raise
        message = f"the session of {saved.email} had already ended"
    delete_session(args.home)
    print(f"{message}; removed {session_path(args.home)}", file=out)
    return 0
