"""Access tokens: what a valid token carries, and every kind of bad token is a 401."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from shared_code.gatherer import access_tokens
from shared_code.platform.config import get_settings
from shared_code.platform.errors import Unauthorized
from shared_code.platform.timeutil import utc_now

pytestmark = pytest.mark.usefixtures("offline_settings")


def _issued_at(seconds_ago: int) -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(access_tokens, "utc_now", lambda: utc_now() - timedelta(seconds=seconds_ago))
        return access_tokens.issue_token("dale", 1).token


def _claims(**overrides):
    now = int(utc_now().timestamp())
    settings = get_settings()
    claims = {"sub": "dale", "iat": now, "exp": now + 600, "iss": settings.jwt_issuer,
              "aud": settings.jwt_audience, "jti": "j-1", "gen": 1}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims, key=None, algorithm="HS256"):
    return jwt.encode(claims, key or get_settings().jwt_secret, algorithm=algorithm)


def _b64(document) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def _rejected(token) -> Unauthorized:
    with pytest.raises(Unauthorized) as raised:
        access_tokens.verify_token(token)
    assert raised.value.status == 401
    assert raised.value.headers["WWW-Authenticate"].startswith("Bearer")
    return raised.value


def test_issued_token_carries_the_required_claims_and_verifies():
    issued = access_tokens.issue_token("dale", 1)
    claims = access_tokens.verify_token(issued.token)
    settings = get_settings()
    assert claims["sub"] == "dale" and claims["jti"] == issued.jti and claims["gen"] == 1
    assert claims["exp"] - claims["iat"] == settings.jwt_ttl_seconds == 600
    assert claims["iss"] == settings.jwt_issuer and claims["aud"] == settings.jwt_audience
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"


def test_each_token_has_its_own_jti():
    assert access_tokens.issue_token("dale", 1).jti != access_tokens.issue_token("dale", 1).jti


def test_expired_token_is_rejected():
    assert "expired" in _rejected(_issued_at(601)).detail


def test_token_is_valid_until_just_before_expiry():
    assert access_tokens.verify_token(_issued_at(590))["sub"] == "dale"


def test_tampered_payload_is_rejected():
    header, _payload, signature = access_tokens.issue_token("dale", 1).token.split(".")
    forged = f"{header}.{_b64(_claims(sub='admin'))}.{signature}"
    assert _rejected(forged).message == "invalid_token"


def test_alg_none_is_rejected():
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    assert _rejected(unsigned).message == "invalid_token"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_other_hmac_algorithm_with_the_right_key_is_rejected():
    assert _rejected(_sign(_claims(), algorithm="HS512")).message == "invalid_token"


def test_hs256_with_a_wrong_secret_is_rejected():
    assert _rejected(_sign(_claims(), key=b"w" * 32)).message == "invalid_token"


@pytest.mark.parametrize("claim, value", [("aud", "someone-else"), ("iss", "https://evil.example")])
def test_wrong_audience_or_issuer_is_rejected(claim, value):
    assert _rejected(_sign(_claims(**{claim: value}))).message == "invalid_token"


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti", "aud", "iss"])
def test_token_without_a_required_claim_is_rejected(missing):
    assert _rejected(_sign(_claims(**{missing: None}))).message == "invalid_token"


@pytest.mark.parametrize("token", ["", None])
def test_missing_token(token):
    error = _rejected(token)
    assert error.message == "missing_token" and "error=" not in error.headers["WWW-Authenticate"]


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "x" * 5000, 12345])
def test_garbage_is_rejected(token):
    assert _rejected(token).message == "invalid_token"


@pytest.mark.parametrize("header, expected", [
    ("Bearer abc.def.ghi", "abc.def.ghi"),
    ("bearer  abc ", "abc"),
    ("Basic abc", None),
    ("Bearer", None),
    (None, None),
])
def test_bearer_header_parsing(header, expected):
    assert access_tokens.bearer_token(header) == expected


@pytest.mark.parametrize("generation", [None, 0, -1, True, "1", 1.5])
def test_a_token_without_a_positive_integer_generation_is_refused(generation):
    assert _rejected(_sign(_claims(gen=generation))).message == "invalid_token"
