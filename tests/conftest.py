"""Shared fixtures.

``emulators`` (session): real Azurite + cosmosdb-server on free ports, the app's settings
pointed at them, the database and containers provisioned. Unit tests do not use it.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devhost.emulators import Emulators, running_emulators  # noqa: E402
from devhost.mailbox import Mailbox  # noqa: E402
from shared_code.platform import blobs, config, cosmos, rate_limit  # noqa: E402

TEST_SETTINGS = {
    "TRUSTGATE_LOCAL_SETTINGS": str(ROOT / "tests" / "no-local-settings.json"),
    "DEVICE_TOKEN_PEPPER": base64.b64encode(b"test-pepper-" + b"x" * 32).decode(),
    "COSMOS_DATABASE": "trustgate-test",
    "STORAGE_TIMEOUT_SECONDS": "5",
    "UPLOADS_CONTAINER": "uploads",
    "UPLOAD_STAGING_CONTAINER": "upload-staging",
    "PASSWORD_PEPPER": base64.b64encode(b"test-password-pepper-" + b"p" * 32).decode(),
    "KMS_MASTER_KEY": base64.b64encode(b"test-kms-kek-" + b"k" * 19).decode(),
    "KMS_RSA_KEY_BITS": "2048",  # keeps key generation fast; 3072 (the default) is tested once
    "DATASTORE_MAX_FILE_BYTES": "1048576",
    # The purge timer never fires on its own during tests (tests start a devhost with their own schedule).
    "PURGE_SCHEDULE": "0 0 0 1 1 *",
    "TOKEN_RATE_LIMIT_PER_MINUTE": "100000",
    "OTP_PEPPER": base64.b64encode(b"test-otp-pepper-" + b"o" * 32).decode(),
    # Nothing listens here unless a test starts the `mail_server` fixture (then it points SMTP_* at it).
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "9",
    "SMTP_SENDER": "TrustGate tests <no-reply@trustgate.test>",
    "SMTP_STARTTLS": "false",
    "SMTP_TIMEOUT_SECONDS": "5",
    "JWT_SECRET": base64.b64encode(b"test-jwt-secret-" + b"j" * 32).decode(),
    # Tests log in and mail the same addresses many times from one client; throttling tests set low limits.
    "LOGIN_RATE_LIMIT_PER_MINUTE": "100000",
    "LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE": "100000",
    "MAIL_RATE_LIMIT_PER_HOUR": "100000",
    # devices (hardware attestation): no test reaches Google's status list; tests that need one run
    # a local fake (tests/support/attestation.py), and the refresh timer never fires on its own.
    "ANDROID_ATTESTATION_STATUS_URL": "http://127.0.0.1:9/attestation/status",
    "ANDROID_ATTESTATION_STATUS_SCHEDULE": "0 0 0 1 1 *",
    # audit
    "AUDIT_SIGNING_KEY": base64.b64encode(b"test-audit-signing-key-" + b"s" * 9).decode(),
    "AUDIT_SALT": base64.b64encode(b"test-audit-salt-" + b"a" * 32).decode(),
    "AUDIT_ENVIRONMENT": "test",
    # KMS key service: the rewrap timer never fires on its own either; tests run it.
    "KMS_REWRAP_SCHEDULE": "0 0 0 1 1 *",
}


def reset_app_state() -> None:
    """Forget cached settings and clients after the environment changed."""
    config.reset_settings()
    cosmos.reset_client()
    blobs.reset_client()
    rate_limit.reset_leases()
    from shared_code.audit import sequencer

    sequencer.reset_cache()


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings() -> Iterator[None]:
    """Every test sees only TEST_SETTINGS (plus what a fixture adds), never a developer's local.settings.json."""
    saved = dict(os.environ)
    os.environ.update(TEST_SETTINGS)
    reset_app_state()
    yield
    os.environ.clear()
    os.environ.update(saved)
    reset_app_state()


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Azurite and cosmosdb-server for the session, provisioned, with the app's settings pointing at them."""
    from devhost.provision import provision

    with running_emulators(tmp_path_factory.mktemp("azurite")) as running:
        os.environ.update(running.settings())
        reset_app_state()
        provision()
        yield running
    reset_app_state()


@pytest.fixture
def app_settings(monkeypatch) -> Iterator[Callable[..., None]]:
    """``app_settings(NAME="value", ...)`` sets app settings for the rest of one test (environment
    plus a fresh settings cache); the environment is restored after it."""

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        config.reset_settings()

    yield apply
    config.reset_settings()  # runs before monkeypatch restores the environment; the next read is fresh


@pytest.fixture(scope="session")
def mail_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd, :mod:`devhost.mailbox`) for the session, with the app's
    ``SMTP_*`` settings pointing at it. Read codes with :func:`tests.support.mail.latest_otp`."""
    from devhost.mailbox import running_mailbox, smtp_settings

    with running_mailbox() as mailbox:
        saved = {name: os.environ.get(name) for name in smtp_settings(mailbox)}
        os.environ.update(smtp_settings(mailbox))
        config.reset_settings()
        yield mailbox
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        config.reset_settings()


@pytest.fixture
def smtp_down(mail_server) -> Iterator[None]:
    """For one test, point ``SMTP_*`` at a port where no SMTP server listens."""
    from tests.support.mail import smtp_unreachable

    with smtp_unreachable():
        yield
