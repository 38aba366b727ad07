"""Authorization: Bearer header parsing (RFC 6750 §2.1)."""

import pytest

from shared_code.platform.bearer import bearer_token
from shared_code.platform.errors import BadRequest, Unauthorized

TOKEN = "kX9cR4tL7wZ1pN6yB3hJ5fD0sA8eU2iO4gK7qTmQ8v2"


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN} ", "Bearer abc.def~+/=="])
def test_bearer_credentials_yield_the_token(header):
    assert bearer_token(header) == header.split()[-1]


@pytest.mark.parametrize("header", [None, "", "   "])
def test_no_credentials_is_401_missing_token_with_the_bare_challenge(header):
    with pytest.raises(Unauthorized) as raised:
        bearer_token(header)
    assert raised.value.message == "missing_token"
    assert raised.value.headers["WWW-Authenticate"] == 'Bearer realm="trustgate"'


@pytest.mark.parametrize("header", [
    "Bearer", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN} extra",
    "Bearer " + "a" * 10 * 1024, "Bearer tökén", "Bearer 令牌", f"Bearer {TOKEN}\x00",
])
def test_anything_else_is_invalid_authorization_with_a_bearer_challenge(header):
    with pytest.raises(BadRequest) as raised:
        bearer_token(header)
    assert raised.value.message == "invalid_authorization"
    assert raised.value.headers["WWW-Authenticate"].startswith("Bearer ")
