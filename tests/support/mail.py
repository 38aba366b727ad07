"""Reading one-time codes in tests: the `mail_server` fixture (tests/conftest.py) is a real
aiosmtpd server; these helpers wait for the mail the app sent and return the code in it.

Typical use::

    def test_x(emulators, mail_server):
        accounts.register(email, password)
        code = latest_otp(mail_server, email, "register")
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from devhost.emulators import free_port
from devhost.mailbox import Mailbox
from shared_code.platform.config import reset_settings


def latest_otp(mailbox: Mailbox, address: str, purpose: str | None = None, *, after: int | None = None,
               timeout: float = 10.0) -> str:
    """The code of the newest OTP mail to ``address`` (``purpose`` ``register`` / ``login`` / any).

    ``after``: wait until more than this many such mails arrived (default: at least one). Pass
    :func:`otp_count` taken before the request to be sure to read the mail that request sent.
    """
    return mailbox.latest_otp(address, purpose, after=after or 0, timeout=timeout)


def otp_count(mailbox: Mailbox, address: str, purpose: str | None = None) -> int:
    """How many OTP mails (of ``purpose``) ``address`` has received so far."""
    return mailbox.otp_count(address, purpose)


@contextlib.contextmanager
def smtp_unreachable() -> Iterator[None]:
    """Inside the block ``SMTP_PORT`` points where no SMTP server listens (a mail outage)."""
    saved = os.environ.get("SMTP_PORT")
    os.environ["SMTP_PORT"] = str(free_port())
    reset_settings()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SMTP_PORT", None)
        else:
            os.environ["SMTP_PORT"] = saved
        reset_settings()
