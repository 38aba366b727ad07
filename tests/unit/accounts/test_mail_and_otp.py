"""OTP codes and their mails: CSPRNG format, the mail over real SMTP (aiosmtpd), outage handling,
and that the code never reaches the logs."""

import logging

import pytest

from devhost.mailbox import otp_from, running_mailbox, smtp_settings
from shared_code.accounts import mail, otp
from shared_code.platform import config
from shared_code.platform.errors import ServiceUnavailable
from tests.support.mail import smtp_unreachable

pytestmark = pytest.mark.usefixtures("offline_settings")


def test_codes_are_six_random_digits():
    codes = {otp.new_code() for _ in range(2000)}
    assert all(otp.CODE_PATTERN.fullmatch(code) for code in codes)
    assert len(codes) > 1900  # collisions are rare among 10^6 values
    assert any(code.startswith("0") for code in codes)  # leading zeros are kept


def test_otp_mail_goes_out_over_smtp_and_the_code_is_not_logged(monkeypatch, caplog):
    with running_mailbox() as box:
        for name, value in smtp_settings(box).items():
            monkeypatch.setenv(name, value)
        config.reset_settings()
        with caplog.at_level(logging.DEBUG):
            mail.send(mail.otp_message("carol@example.org", "042917", otp.LOGIN, 600))
        received = box.wait_for_mail("carol@example.org")[0]
    assert received[mail.PURPOSE_HEADER] == "login" and received["Subject"] == "Your TrustGate sign-in code"
    assert received["From"] == config.get_settings().smtp_sender
    assert otp_from(received) == "042917" and "10 minutes" in received.get_content()
    app_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("trustgate"))
    assert "042917" not in app_log and "sent login code mail" in app_log


def test_unreachable_smtp_server_is_a_503(caplog):
    with smtp_unreachable(), pytest.raises(ServiceUnavailable) as raised:
        mail.send(mail.otp_message("dave@example.org", "123456", otp.REGISTER, 600))
    assert raised.value.message == "mail_unavailable" and "123456" not in caplog.text
