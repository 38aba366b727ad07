"""Throttling of OTP mail-bombing (OWASP Authentication Cheat Sheet, "Protect against automated
attacks"; NIST SP 800-63B §5.2.2): at most ``MAIL_RATE_LIMIT_PER_HOUR`` code mails (registration
and login codes together) per email address and hour, counted in Cosmos DB by
:mod:`shared_code.platform.rate_limit` so every instance shares the limit.

Password guessing is throttled by :mod:`shared_code.platform.login_throttle`. A refusal raises
:class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` (429 with ``Retry-After``)
before anything is mailed or stored, and logs a ``rate_limited`` security event; the address
appears there only as :func:`~shared_code.platform.security_log.subject_ref`.
"""

from __future__ import annotations

from shared_code.platform import rate_limit
from shared_code.platform.config import get_settings
from shared_code.platform.security_log import subject_ref

HOUR = 3600
MAIL_BUCKET = "otp_mail"


def check_mail(email: str) -> None:
    """Refuse (429) when ``email`` has had ``MAIL_RATE_LIMIT_PER_HOUR`` OTP mails this hour,
    without counting anything: lets ``/login`` answer a throttled address before the password is
    checked, so a right password is not told apart from a wrong one by the mail limit."""
    limit = get_settings().mail_rate_limit_per_hour
    rate_limit.refuse(rate_limit.peek(MAIL_BUCKET, email, limit, HOUR), limit, _mail_detail(limit),
                      limit_kind="mail", email_ref=subject_ref(email))


def admit_mail(email: str) -> None:
    """Count one OTP mail to ``email``; raises ``rate_limited`` (429) over
    ``MAIL_RATE_LIMIT_PER_HOUR``, in which case no mail may be sent."""
    limit = get_settings().mail_rate_limit_per_hour
    rate_limit.enforce(MAIL_BUCKET, email, limit, HOUR, _mail_detail(limit),
                       limit_kind="mail", email_ref=subject_ref(email))


def _mail_detail(limit: int) -> str:
    return f"at most {limit} codes an hour are mailed to one address: use the last one or wait"
