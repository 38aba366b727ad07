"""A local SMTP server (aiosmtpd) that keeps every mail: the dev stack's and the tests' mail sink.

:class:`Mailbox` receives mail on 127.0.0.1, keeps each message in memory (tests read them) and,
when given a folder, writes each one there as ``<UTC time>-<n>-<recipient>.eml``. With
``echo=True`` it prints OTP mails (those carrying the ``X-TrustGate-Purpose`` header) on the
console, so a developer can type the code: for the dev stack only, never in Azure.

Example::

    with running_mailbox(port=0) as box:          # a free port
        ...send mail to 127.0.0.1:box.port...
        code = box.latest_otp("alice@example.org")
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Iterator

from aiosmtpd.controller import Controller

from shared_code.accounts.mail import PURPOSE_HEADER

OTP_IN_BODY = re.compile(r"^\s*([0-9]{6})\s*$", re.MULTILINE)


class MailboxTimeout(AssertionError):
    """No matching mail arrived in time."""


@dataclass
class Mailbox:
    """aiosmtpd handler: accepts every mail, keeps it, optionally saves and echoes it."""

    folder: Path | None = None
    echo: bool = False
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        recipients = [address.lower() for address in envelope.rcpt_tos]
        with self._arrived:
            self.messages.append((recipients, message))
            number = len(self.messages)
            self._arrived.notify_all()
        if self.folder is not None:
            self._save(number, recipients, envelope.content)
        if self.echo and message.get(PURPOSE_HEADER):
            code = otp_from(message)
            print(f"[mailbox] {message.get(PURPOSE_HEADER)} code for {', '.join(recipients)}: {code}", flush=True)
        return "250 Message accepted for delivery"

    def _save(self, number: int, recipients: list[str], content: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        safe = re.sub(r"[^A-Za-z0-9@._-]", "_", recipients[0] if recipients else "unknown")[:100]
        (self.folder / f"{stamp}-{number:05d}-{safe}.eml").write_bytes(content)

    def mails_to(self, address: str) -> list[EmailMessage]:
        """Every mail received for ``address`` (case-insensitive), oldest first."""
        with self._arrived:
            return [message for recipients, message in self.messages if address.lower() in recipients]

    def wait_for_mail(self, address: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until at least ``count`` mails for ``address`` arrived; returns them all.

        Raises :class:`MailboxTimeout` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [m for recipients, m in self.messages if address.lower() in recipients]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise MailboxTimeout(f"{count} mail(s) for {address} did not arrive within {timeout:g}s")
                self._arrived.wait(remaining)

    def latest_otp(self, address: str, purpose: str | None = None, after: int = 0, timeout: float = 10.0) -> str:
        """The code of the newest OTP mail for ``address`` (of ``purpose`` if given), waiting until
        more than ``after`` such mails arrived. Raises :class:`MailboxTimeout`."""
        deadline = time.monotonic() + timeout
        while True:
            mails = [m for m in self.mails_to(address) if m.get(PURPOSE_HEADER) and purpose in (None, m.get(PURPOSE_HEADER))]
            if len(mails) > after:
                return otp_from(mails[-1])
            if time.monotonic() >= deadline:
                raise MailboxTimeout(f"no new {purpose or 'OTP'} mail for {address} within {timeout:g}s")
            self.wait_for_mail(address, len(self.mails_to(address)) + 1, max(0.01, deadline - time.monotonic()))

    def otp_count(self, address: str, purpose: str | None = None) -> int:
        """How many OTP mails (of ``purpose`` if given) ``address`` received so far."""
        return sum(1 for m in self.mails_to(address) if m.get(PURPOSE_HEADER) and purpose in (None, m.get(PURPOSE_HEADER)))


def otp_from(message: EmailMessage) -> str:
    """The 6-digit code in an OTP mail's text body (a line holding only the code)."""
    body = message.get_body(preferencelist=("plain",))
    match = OTP_IN_BODY.search(body.get_content() if body is not None else "")
    if match is None:
        raise ValueError("the mail holds no 6-digit code")
    return match.group(1)


@contextlib.contextmanager
def running_mailbox(port: int = 0, folder: Path | None = None, echo: bool = False,
                    host: str = "127.0.0.1") -> Iterator[Mailbox]:
    """Run a :class:`Mailbox` SMTP server on ``host:port`` (a free port when 0) until the block ends."""
    if port == 0:
        from devhost.emulators import free_port

        port = free_port()
    mailbox = Mailbox(folder=folder, echo=echo, port=port)
    controller = Controller(mailbox, hostname=host, port=port, ready_timeout=10)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def smtp_settings(mailbox: Mailbox, host: str = "127.0.0.1") -> dict[str, str]:
    """App settings that send mail to ``mailbox`` (plain SMTP, no AUTH: a local dev server only)."""
    return {"SMTP_HOST": host, "SMTP_PORT": str(mailbox.port), "SMTP_STARTTLS": "false",
            "SMTP_USERNAME": "", "SMTP_PASSWORD": ""}
