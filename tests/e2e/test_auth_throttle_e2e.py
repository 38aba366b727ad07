"""Login throttling through devhost over real HTTP: wrong passwords beyond the limit get 429 with
Retry-After, the right one too until the window passes, then it logs in and a code is mailed.

devhost appends the TCP peer to ``X-Forwarded-For`` as Azure's front end does; with
``TRUSTED_PROXY_HOPS=2`` the address this test sends is the client address.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
import requests

from shared_code.accounts import otp
from shared_code.platform import config, rate_limit
from tests.support.accounts import register_user
from tests.support.mail import latest_otp, otp_count

pytestmark = pytest.mark.e2e


@pytest.fixture
def throttled(live_app, mail_server, monkeypatch) -> Iterator[dict]:
    """Three login attempts a minute, two trusted hops; the limiter's clock stopped 45 s before a
    window ends (``clock["t"]`` moves it)."""
    saved = dict(os.environ)
    os.environ.update(LOGIN_RATE_LIMIT_PER_MINUTE="3", TRUSTED_PROXY_HOPS="2")
    config.reset_settings()
    clock = {"t": datetime(2034, 4, 4, 4, 4, 15, tzinfo=timezone.utc)}
    monkeypatch.setattr(rate_limit, "utc_now", lambda: clock["t"])
    yield clock
    os.environ.clear()
    os.environ.update(saved)
    config.reset_settings()


def test_login_guessing_is_throttled_over_http_until_the_window_passes(live_app, mail_server, throttled) -> None:
    user = register_user(mail_server)

    def login(password: str) -> requests.Response:
        return requests.post(f"{live_app.base_url}/login", json={"email": user.email, "password": password},
                             headers={"X-Forwarded-For": "192.0.2.77"}, timeout=30)

    assert [login(f"wrong-{i}").status_code for i in range(3)] == [401, 401, 401]
    refused = login("wrong-3")
    assert (refused.status_code, refused.json()["message"], refused.headers["Retry-After"]) == (429, "rate_limited", "45")
    assert refused.headers["Content-Type"].startswith("application/json")

    mails = otp_count(mail_server, user.email, otp.LOGIN)
    right = login(user.password)
    assert (right.status_code, right.json(), right.headers["Retry-After"]) == (429, refused.json(), "45")
    assert otp_count(mail_server, user.email, otp.LOGIN) == mails

    throttled["t"] += timedelta(seconds=45)
    accepted = login(user.password)
    assert (accepted.status_code, accepted.json()["message"]) == (200, "login_otp_sent")
    assert latest_otp(mail_server, user.email, otp.LOGIN, after=mails)
