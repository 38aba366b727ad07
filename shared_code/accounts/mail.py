"""Outgoing mail over SMTP (standard library :mod:`smtplib`): the one-time code messages.

Settings: ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_USERNAME`` / ``SMTP_PASSWORD`` (AUTH only when a
user name is set), ``SMTP_SENDER`` (From), ``SMTP_STARTTLS`` (RFC 3207; the server certificate
is verified against the system trust store) and ``SMTP_TIMEOUT_SECONDS`` (connect and each
command). A refused, unreachable or slow server raises
:class:`~shared_code.platform.errors.ServiceUnavailable` (HTTP 503). The code itself is never logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.errors import ServiceUnavailable

log = logging.getLogger("trustgate.mail")

#: Header naming the purpose of a one-time code mail (``register`` / ``login`` / ``delete``); the dev mailbox
#: and tests read it to tell OTP mails apart.
PURPOSE_HEADER = "X-TrustGate-Purpose"

SUBJECTS = {
    "register": "Your TrustGate registration code",
    "login": "Your TrustGate sign-in code",
    "delete": "Your TrustGate account deletion code",
}
#: What each purpose's code is for, in the mail's first line.
ACTIONS = {"register": "registration", "login": "sign-in", "delete": "account deletion"}


def _require_mail_settings() -> None:
    settings = get_settings()
    for name, value in (("SMTP_HOST", settings.smtp_host), ("SMTP_SENDER", settings.smtp_sender)):
        if not value:
            raise ConfigError(name, "is required to send one-time codes but not set")


def otp_message(recipient: str, code: str, purpose: str, ttl_seconds: int) -> EmailMessage:
    """The plain-text mail carrying ``code`` (6 digits) for ``purpose`` to ``recipient``.

    Raises :class:`~shared_code.platform.config.ConfigError` when ``SMTP_HOST`` or ``SMTP_SENDER`` is unset.
    """
    _require_mail_settings()
    settings = get_settings()
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = recipient
    message["Subject"] = SUBJECTS[purpose]
    message[PURPOSE_HEADER] = purpose
    minutes = max(1, ttl_seconds // 60)
    message.set_content(
        f"Your TrustGate {ACTIONS[purpose]} code is:\n\n"
        f"    {code}\n\n"
        f"It is valid for {minutes} minutes and can be used once. If you did not ask for it, ignore this mail.\n"
    )
    return message


def send(message: EmailMessage) -> None:
    """Deliver ``message`` through the configured SMTP server.

    Raises :class:`~shared_code.platform.errors.ServiceUnavailable` ``mail_unavailable`` when the server
    cannot be reached, refuses the login or the recipient, or does not answer within
    ``SMTP_TIMEOUT_SECONDS``; :class:`~shared_code.platform.config.ConfigError` when ``SMTP_HOST`` or
    ``SMTP_SENDER`` is unset.
    """
    _require_mail_settings()
    settings = get_settings()
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("mail to the SMTP server failed: %s", exc.__class__.__name__)
        raise ServiceUnavailable("mail_unavailable", "the code could not be mailed, try again later") from exc
    log.info("sent %s code mail", message.get(PURPOSE_HEADER, "?"))
