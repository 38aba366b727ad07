"""Pinned attestation roots, and the dev-only test roots of ``ATTESTATION_TEST_ROOTS``.

Roots are pinned by public key (SHA-256 of the DER SubjectPublicKeyInfo), not by certificate
bytes, because Google re-issues certificates for one key (the RSA-4096 root has 2016, 2019, 2021
and 2022 certificates). Sources:

- Google: developer.android.com/privacy-and-security/security-key-attestation#root_certificate
  and ``roots.json`` of ``android/keyattestation``: the RSA-4096 root (``serialNumber=f92009e853b6b045``)
  and the EC P-384 "Key Attestation CA1" (2025-07-17 to 2035-07-15).
- Apple: the Apple App Attestation Root CA (P-384, 2020-03-18 to 2045-03-15), from
  www.apple.com/certificateauthority/Apple_App_Attestation_Root_CA.pem; a root shipped inside
  ``x5c`` is never trusted.
- The AOSP software attestation roots (``keymaster_soft_attestation_keys.xml``) are recognised
  only to say so in the refusal: they are never trusted.

``ATTESTATION_TEST_ROOTS`` (a PEM bundle, empty by default, absent from Bicep) adds roots for the
dev stack's test authority; each is trusted for Android and Apple alike.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

log = logging.getLogger("trustgate.attestation")

GOOGLE_RSA_ROOT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIFHDCCAwSgAwIBAgIJAPHBcqaZ6vUdMA0GCSqGSIb3DQEBCwUAMBsxGTAXBgNV
BAUTEGY5MjAwOWU4NTNiNmIwNDUwHhcNMjIwMzIwMTgwNzQ4WhcNNDIwMzE1MTgw
NzQ4WjAbMRkwFwYDVQQFExBmOTIwMDllODUzYjZiMDQ1MIICIjANBgkqhkiG9w0B
AQEFAAOCAg8AMIICCgKCAgEAr7bHgiuxpwHsK7Qui8xUFmOr75gvMsd/dTEDDJdS
Sxtf6An7xyqpRR90PL2abxM1dEqlXnf2tqw1Ne4Xwl5jlRfdnJLmN0pTy/4lj4/7
tv0Sk3iiKkypnEUtR6WfMgH0QZfKHM1+di+y9TFRtv6y//0rb+T+W8a9nsNL/ggj
nar86461qO0rOs2cXjp3kOG1FEJ5MVmFmBGtnrKpa73XpXyTqRxB/M0n1n/W9nGq
C4FSYa04T6N5RIZGBN2z2MT5IKGbFlbC8UrW0DxW7AYImQQcHtGl/m00QLVWutHQ
oVJYnFPlXTcHYvASLu+RhhsbDmxMgJJ0mcDpvsC4PjvB+TxywElgS70vE0XmLD+O
JtvsBslHZvPBKCOdT0MS+tgSOIfga+z1Z1g7+DVagf7quvmag8jfPioyKvxnK/Eg
sTUVi2ghzq8wm27ud/mIM7AY2qEORR8Go3TVB4HzWQgpZrt3i5MIlCaY504LzSRi
igHCzAPlHws+W0rB5N+er5/2pJKnfBSDiCiFAVtCLOZ7gLiMm0jhO2B6tUXHI/+M
RPjy02i59lINMRRev56GKtcd9qO/0kUJWdZTdA2XoS82ixPvZtXQpUpuL12ab+9E
aDK8Z4RHJYYfCT3Q5vNAXaiWQ+8PTWm2QgBR/bkwSWc+NpUFgNPN9PvQi8WEg5Um
AGMCAwEAAaNjMGEwHQYDVR0OBBYEFDZh4QB8iAUJUYtEbEf/GkzJ6k8SMB8GA1Ud
IwQYMBaAFDZh4QB8iAUJUYtEbEf/GkzJ6k8SMA8GA1UdEwEB/wQFMAMBAf8wDgYD
VR0PAQH/BAQDAgIEMA0GCSqGSIb3DQEBCwUAA4ICAQB8cMqTllHc8U+qCrOlg3H7
174lmaCsbo/bJ0C17JEgMLb4kvrqsXZs01U3mB/qABg/1t5Pd5AORHARs1hhqGIC
W/nKMav574f9rZN4PC2ZlufGXb7sIdJpGiO9ctRhiLuYuly10JccUZGEHpHSYM2G
tkgYbZba6lsCPYAAP83cyDV+1aOkTf1RCp/lM0PKvmxYN10RYsK631jrleGdcdkx
oSK//mSQbgcWnmAEZrzHoF1/0gso1HZgIn0YLzVhLSA/iXCX4QT2h3J5z3znluKG
1nv8NQdxei2DIIhASWfu804CA96cQKTTlaae2fweqXjdN1/v2nqOhngNyz1361mF
mr4XmaKH/ItTwOe72NI9ZcwS1lVaCvsIkTDCEXdm9rCNPAY10iTunIHFXRh+7KPz
lHGewCq/8TOohBRn0/NNfh7uRslOSZ/xKbN9tMBtw37Z8d2vvnXq/YWdsm1+JLVw
n6yYD/yacNJBlwpddla8eaVMjsF6nBnIgQOf9zKSe06nSTqvgwUHosgOECZJZ1Eu
zbH4yswbt02tKtKEFhx+v+OTge/06V+jGsqTWLsfrOCNLuA8H++z+pUENmpqnnHo
vaI47gC+TNpkgYGkkBT6B/m/U01BuOBBTzhIlMEZq9qkDWuM2cA5kW5V3FJUcfHn
w1IdYIg2Wxg7yHcQZemFQg==
-----END CERTIFICATE-----
"""

GOOGLE_EC_ROOT_PEM = """\
-----BEGIN CERTIFICATE-----
MIICIjCCAaigAwIBAgIRAISp0Cl7DrWK5/8OgN52BgUwCgYIKoZIzj0EAwMwUjEc
MBoGA1UEAwwTS2V5IEF0dGVzdGF0aW9uIENBMTEQMA4GA1UECwwHQW5kcm9pZDET
MBEGA1UECgwKR29vZ2xlIExMQzELMAkGA1UEBhMCVVMwHhcNMjUwNzE3MjIzMjE4
WhcNMzUwNzE1MjIzMjE4WjBSMRwwGgYDVQQDDBNLZXkgQXR0ZXN0YXRpb24gQ0Ex
MRAwDgYDVQQLDAdBbmRyb2lkMRMwEQYDVQQKDApHb29nbGUgTExDMQswCQYDVQQG
EwJVUzB2MBAGByqGSM49AgEGBSuBBAAiA2IABCPaI3FO3z5bBQo8cuiEas4HjqCt
G/mLFfRT0MsIssPBEEU5Cfbt6sH5yOAxqEi5QagpU1yX4HwnGb7OtBYpDTB57uH5
Eczm34A5FNijV3s0/f0UPl7zbJcTx6xwqMIRq6NCMEAwDwYDVR0TAQH/BAUwAwEB
/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFFIyuyz7RkOb3NaBqQ5lZuA0QepA
MAoGCCqGSM49BAMDA2gAMGUCMETfjPO/HwqReR2CS7p0ZWoD/LHs6hDi422opifH
EUaYLxwGlT9SLdjkVpz0UUOR5wIxAIoGyxGKRHVTpqpGRFiJtQEOOTp/+s1GcxeY
uR2zh/80lQyu9vAFCj6E4AXc+osmRg==
-----END CERTIFICATE-----
"""

APPLE_APP_ATTEST_ROOT_PEM = """\
-----BEGIN CERTIFICATE-----
MIICITCCAaegAwIBAgIQC/O+DvHN0uD7jG5yH2IXmDAKBggqhkjOPQQDAzBSMSYw
JAYDVQQDDB1BcHBsZSBBcHAgQXR0ZXN0YXRpb24gUm9vdCBDQTETMBEGA1UECgwK
QXBwbGUgSW5jLjETMBEGA1UECAwKQ2FsaWZvcm5pYTAeFw0yMDAzMTgxODMyNTNa
Fw00NTAzMTUwMDAwMDBaMFIxJjAkBgNVBAMMHUFwcGxlIEFwcCBBdHRlc3RhdGlv
biBSb290IENBMRMwEQYDVQQKDApBcHBsZSBJbmMuMRMwEQYDVQQIDApDYWxpZm9y
bmlhMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAERTHhmLW07ATaFQIEVwTtT4dyctdh
NbJhFs/Ii2FdCgAHGbpphY3+d8qjuDngIN3WVhQUBHAoMeQ/cLiP1sOUtgjqK9au
Yen1mMEvRq9Sk3Jm5X8U62H+xTD3FE9TgS41o0IwQDAPBgNVHRMBAf8EBTADAQH/
MB0GA1UdDgQWBBSskRBTM72+aEH/pwyp5frq5eWKoTAOBgNVHQ8BAf8EBAMCAQYw
CgYIKoZIzj0EAwMDaAAwZQIwQgFGnByvsiVbpTKwSga0kP0e8EeDS4+sQmTvb7vn
53O5+FRXgeLhpJ06ysC5PrOyAjEAp5U4xDgEgllF7En3VcE3iexZZtKeYnpqtijV
oyFraWVIyd/dganmrduC1bmTBGwD
-----END CERTIFICATE-----
"""

GOOGLE_ROOT_SPKI_SHA256 = frozenset({
    "feb2ea7551ee316ed4bb443c8293b884dbfdea40b603ee3e4f4a897e4580fbae",  # RSA-4096 root
    "3ee44512a1af2beb39c889490c60ea3f82e43f5d5a5532f5ab9419f676cd07ec",  # EC P-384 Key Attestation CA1
})
APPLE_ROOT_SPKI_SHA256 = frozenset({"1ae751fd29896d0f1f13fe226c063f445d40d8938acc6245c251ecc0679330bd"})
AOSP_SOFTWARE_ROOT_SPKI_SHA256 = frozenset({
    "d5100c7942ef2e8310dc30ef82729680cf48d690735c3f68179a33c7c370f286",  # EC software attestation root
    "f2c4746f545946c100e72297f8f946344d7052f03a2f694221f9c893b0e6f711",  # RSA software attestation root
})


class TestRootsError(ValueError):
    """``ATTESTATION_TEST_ROOTS`` is not a PEM bundle of certificates."""


def spki_sha256(certificate: x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the certificate's DER SubjectPublicKeyInfo (the pin)."""
    der = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class TrustStore:
    """The roots one verification trusts: certificates (for completing chains by issuer name)
    and the SPKI pins that decide ``untrusted_root``."""

    android_roots: tuple[x509.Certificate, ...]
    apple_roots: tuple[x509.Certificate, ...]
    test_roots: tuple[x509.Certificate, ...] = ()

    @functools.cached_property
    def android_pins(self) -> frozenset[str]:
        return GOOGLE_ROOT_SPKI_SHA256 | {spki_sha256(c) for c in self.test_roots}

    @functools.cached_property
    def apple_pins(self) -> frozenset[str]:
        return APPLE_ROOT_SPKI_SHA256 | {spki_sha256(c) for c in self.test_roots}

    def android_root_for(self, issuer: x509.Name) -> x509.Certificate | None:
        """A trusted Android root whose subject is ``issuer`` (to complete a chain), or ``None``."""
        return next((c for c in (*self.android_roots, *self.test_roots) if c.subject == issuer), None)

    def apple_root_for(self, issuer: x509.Name) -> x509.Certificate | None:
        """A trusted App Attest root whose subject is ``issuer``, or ``None``."""
        return next((c for c in (*self.apple_roots, *self.test_roots) if c.subject == issuer), None)


def parse_test_roots(bundle: str) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM bundle (``""`` → none). Raises :class:`TestRootsError`."""
    if not bundle.strip():
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(bundle.encode("ascii")))
    except (ValueError, UnicodeEncodeError):
        raise TestRootsError("ATTESTATION_TEST_ROOTS must be concatenated PEM certificates") from None


@functools.lru_cache(maxsize=4)
def trust_store(test_roots_pem: str = "") -> TrustStore:
    """The pinned roots plus the parsed ``test_roots_pem``; cached per bundle, so a non-empty
    ``ATTESTATION_TEST_ROOTS`` is logged (as a warning) once per process, when first used."""
    test_roots = parse_test_roots(test_roots_pem)
    for root in test_roots:
        log.warning("ATTESTATION_TEST_ROOTS is set: trusting test root %s (SPKI SHA-256 %s); dev only, never in Azure",
                    root.subject.rfc4514_string(), spki_sha256(root))
    return TrustStore(
        android_roots=(x509.load_pem_x509_certificate(GOOGLE_RSA_ROOT_PEM.encode()),
                       x509.load_pem_x509_certificate(GOOGLE_EC_ROOT_PEM.encode())),
        apple_roots=(x509.load_pem_x509_certificate(APPLE_APP_ATTEST_ROOT_PEM.encode()),),
        test_roots=test_roots,
    )
