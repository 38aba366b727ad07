"""Email normalisation: one canonical form per address, clear 400 otherwise."""

from __future__ import annotations

import pytest

from shared_code.accounts.users import normalize_email
from shared_code.platform.errors import BadRequest


@pytest.mark.parametrize("raw", ["Alice@Example.ORG", "  alice@example.org\n", "ALICE@EXAMPLE.ORG"])
def test_case_and_whitespace_variants_normalise_to_one_address(raw: str) -> None:
    assert normalize_email(raw) == "alice@example.org"


@pytest.mark.parametrize("raw", ["", "   ", "alice", "alice@", "@example.org", "a b@example.org", None, 42, "a@" + "x" * 260 + ".org"])
def test_invalid_addresses_are_refused(raw: object) -> None:
    with pytest.raises(BadRequest) as caught:
        normalize_email(raw)
    assert caught.value.message == "invalid_email"
