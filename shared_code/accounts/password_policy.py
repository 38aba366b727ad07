"""Password policy for new accounts (NIST SP 800-63B §5.1.1.2, OWASP Authentication Cheat Sheet).

- length: at least :data:`MIN_LENGTH` characters and at most :data:`MAX_LENGTH` (well above the
  64 NIST asks to allow); every Unicode character counts as one and nothing is truncated (see
  :mod:`shared_code.platform.passwords` for how long passwords reach bcrypt);
- no composition rules; instead the password is refused when it is common or guessable, judged by
  zxcvbn (Dropbox's estimator, which carries the common-password, name and word dictionaries and
  spots keyboard walks, repeats, sequences, dates and l33t): its score (0..4) must reach
  ``PASSWORD_MIN_SCORE``. The email address and its parts are passed as user inputs, so
  ``alice@example.org`` cannot pick ``alice2024example``.
"""

from __future__ import annotations

import re
import threading

from shared_code.platform.config import get_settings
from shared_code.platform.errors import BadRequest

MIN_LENGTH = 8
MAX_LENGTH = 1024
# zxcvbn's matching is superlinear in the length and it refuses more than 72 characters by default:
# score the first 100 (a password whose first 100 characters are strong is strong).
SCORED_PREFIX = 100

# zxcvbn keeps the user inputs in a module-level dictionary while it scores: one call at a time.
_zxcvbn_lock = threading.Lock()


def _user_inputs(email: str) -> list[str]:
    """The email, its local part and each label of the local part and the domain."""
    local, _, domain = email.partition("@")
    parts = [email, local, domain, *re.split(r"[^\w]+", local), *domain.split(".")]
    return [part for part in dict.fromkeys(parts) if len(part) >= 3]


def check_password(password: str, email: str) -> None:
    """Accept ``password`` for the account ``email`` (normalised) or raise.

    Raises :class:`~shared_code.platform.errors.BadRequest` ``weak_password`` with a human ``detail``
    (zxcvbn's warning when it has one) when the password is too short, too long, or scores below
    ``PASSWORD_MIN_SCORE``.
    """
    if len(password) < MIN_LENGTH:
        raise BadRequest("weak_password", f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise BadRequest("weak_password", f"the password may have at most {MAX_LENGTH} characters")
    # Imported on first use: zxcvbn builds its dictionaries at import (~30 ms), which only
    # registrations need, not the cold start of every other endpoint.
    from zxcvbn import zxcvbn

    scored = password[:SCORED_PREFIX]
    with _zxcvbn_lock:
        result = zxcvbn(scored, user_inputs=_user_inputs(email), max_length=SCORED_PREFIX)
    if result["score"] < get_settings().password_min_score:
        warning = (result.get("feedback") or {}).get("warning") or "it is too easy to guess"
        raise BadRequest("weak_password", f"choose a harder password: {warning.rstrip('.')}")
