"""Fixtures of the device integration tests: an attested device, the fake attestation PKI trusted
by the app, and a local attestation status list."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from shared_code.devices.attestation import status_list
from tests.support.attestation import APP_ID, PACKAGE, SIGNER, FakePki, FakeStatusList
from tests.support.devices import DeviceActor
from tests.support.play_integrity import configure  # noqa: F401 - fixture


@pytest.fixture
def attested_device(emulators) -> DeviceActor:
    """A registered device with a software key attested (format ``key``, P-256)."""
    actor = DeviceActor()
    assert actor.register()[0] == 201
    assert actor.attest()[0] == 200
    return actor


@pytest.fixture(scope="module")
def pki() -> FakePki:
    """A test attestation authority (one per test module) and a device key under it."""
    return FakePki()


@pytest.fixture
def status() -> Iterator[FakeStatusList]:
    """Google's attestation status endpoint, faked on 127.0.0.1."""
    with FakeStatusList() as fake:
        yield fake
    status_list.reset()


@pytest.fixture
def attestation_settings(configure, emulators, pki, status) -> Callable[[dict[str, str]], None]:
    """The app trusting ``pki`` for android-key and apple-appattest, with ``status`` as the status
    list; returns ``configure`` for further settings."""
    configure({
        "ATTESTATION_TEST_ROOTS": pki.authority.roots_pem(),
        "ANDROID_ATTESTATION_PACKAGES": PACKAGE,
        "ANDROID_ATTESTATION_SIGNATURE_DIGESTS": ":".join(f"{b:02X}" for b in SIGNER),
        "ANDROID_ATTESTATION_STATUS_URL": status.url,
        "APP_ATTEST_APP_IDS": APP_ID,
        "APP_ATTEST_ENVIRONMENT": "development",
    })
    status_list.reset()
    return configure
