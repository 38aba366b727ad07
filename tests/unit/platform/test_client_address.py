"""Client address from X-Forwarded-For behind trusted proxies, and IP allow/deny lists."""

import ipaddress

import pytest

from shared_code.platform.client_address import address_label, client_address, is_allowed, parse_forwarded_entry


def nets(*texts):
    return tuple(ipaddress.ip_network(t, strict=False) for t in texts)


@pytest.mark.parametrize("entry, expected", [
    ("203.0.113.7", "203.0.113.7"),
    (" 203.0.113.7:51234 ", "203.0.113.7"),
    ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("::ffff:198.51.100.4", "198.51.100.4"),
    ("unknown", None),
    ("", None),
    ("300.1.1.1", None),
    ("[2001:db8::1", None),
])
def test_forwarded_entries_parse_to_addresses(entry, expected):
    address = parse_forwarded_entry(entry)
    assert (str(address) if address else None) == expected


def test_the_client_is_the_entry_written_by_the_outermost_trusted_proxy():
    headers = {"x-forwarded-for": "6.6.6.6, 203.0.113.7:5000, 10.0.0.2:443"}
    assert str(client_address(headers, 1)) == "10.0.0.2"
    assert str(client_address(headers, 2)) == "203.0.113.7"  # the spoofed 6.6.6.6 is never used
    assert str(client_address(headers, 3)) == "6.6.6.6"


def test_too_few_entries_no_header_or_no_trusted_proxy_mean_unknown():
    assert client_address({"x-forwarded-for": "203.0.113.7"}, 2) is None
    assert client_address({}, 1) is None
    assert client_address({"x-forwarded-for": "203.0.113.7"}, 0) is None
    assert client_address({"x-forwarded-for": "garbage"}, 1) is None
    assert address_label(None) == "unknown"


def test_empty_lists_allow_everyone_including_unknown():
    assert is_allowed(ipaddress.ip_address("198.51.100.1"), (), ())
    assert is_allowed(None, (), ())


def test_allow_list_admits_only_its_ranges_and_refuses_unknown():
    allow = nets("10.0.0.0/8", "2001:db8::/32", "192.0.2.5")
    assert is_allowed(ipaddress.ip_address("10.20.30.40"), allow, ())
    assert is_allowed(ipaddress.ip_address("2001:db8:1::9"), allow, ())
    assert is_allowed(ipaddress.ip_address("192.0.2.5"), allow, ())
    assert not is_allowed(ipaddress.ip_address("192.0.2.6"), allow, ())
    assert not is_allowed(ipaddress.ip_address("2001:db9::1"), allow, ())
    assert not is_allowed(None, allow, ())


def test_deny_wins_over_allow():
    allow, deny = nets("10.0.0.0/8"), nets("10.1.0.0/16")
    assert not is_allowed(ipaddress.ip_address("10.1.2.3"), allow, deny)
    assert is_allowed(ipaddress.ip_address("10.2.2.3"), allow, deny)
    assert not is_allowed(ipaddress.ip_address("10.1.2.3"), (), deny)
    assert is_allowed(None, (), deny)


def test_rate_limit_keys_aggregate_ipv6_per_prefix_and_keep_ipv4_and_unknown():
    from shared_code.platform.client_address import rate_limit_key

    assert rate_limit_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64) == "2001:db8:1:2::/64"
    assert rate_limit_key("2001:db8:1:2::1", 64) == rate_limit_key("2001:db8:1:2:ffff::9", 64)
    assert rate_limit_key("2001:db8:1:3::1", 64) != rate_limit_key("2001:db8:1:2::1", 64)
    assert rate_limit_key("2001:db8::1", 128) == "2001:db8::1/128"
    assert rate_limit_key("203.0.113.7", 64) == "203.0.113.7"
    assert rate_limit_key("unknown", 64) == "unknown"
