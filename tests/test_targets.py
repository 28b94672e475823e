"""Targets and port specs: what is accepted, what nmap gets, and how refusals read."""

from __future__ import annotations

import pytest

from config import parse_scope
from scanner.errors import TargetRefused
from scanner.targets import parse_ports, resolve_targets

LOOPBACK = parse_scope("127.0.0.0/8,::1/128")
LAB = parse_scope("10.0.0.0/24,127.0.0.0/8,::1/128,fd00::/64")

NAMES = {
    "web.lab": ["10.0.0.20"],
    "dual.lab": ["10.0.0.21", "fd00::21"],
    "v6.lab": ["fd00::22"],
    "evil.example": ["10.0.0.23", "93.184.216.34"],
}


def fake_resolver(name: str) -> list[str]:
    """Names resolved from a table, so no test asks a real DNS server."""
    return NAMES.get(name, [])


def resolve(text: str, scope=LAB, cap: int = 4096):  # type: ignore[no-untyped-def]
    return resolve_targets(text, scope, cap, fake_resolver)


@pytest.mark.parametrize(
    ("text", "addresses", "count"),
    [
        ("127.0.0.1", ("127.0.0.1",), 1),
        ("10.0.0.0/30", ("10.0.0.0/30",), 4),
        ("10.0.0.5/30", ("10.0.0.4/30",), 4),
        ("10.0.0.1-3", ("10.0.0.1", "10.0.0.2/31"), 3),
        ("10.0.0.1-10.0.0.3", ("10.0.0.1", "10.0.0.2/31"), 3),
        ("10.0.0.1, 10.0.0.2\n10.0.0.1", ("10.0.0.1", "10.0.0.2"), 2),
        ("web.lab", ("10.0.0.20",), 1),
        ("web.lab 10.0.0.20", ("10.0.0.20",), 1),
        ("dual.lab", ("10.0.0.21",), 1),
    ],
)
def test_accepted_targets_become_numeric_blocks(
    text: str, addresses: tuple[str, ...], count: int
) -> None:
    ts = resolve(text)
    assert ts.addresses == addresses
    assert ts.count == count
    assert ts.family == 4


def test_ipv6_targets_are_their_own_family() -> None:
    ts = resolve("::1 v6.lab fd00::/126")
    assert ts.family == 6
    assert set(ts.addresses) == {"::1", "fd00::/126", "fd00::22"}
    assert ts.count == 6


def test_the_typed_tokens_are_kept_for_the_job() -> None:
    assert resolve("web.lab, 127.0.0.1").tokens == ("web.lab", "127.0.0.1")


@pytest.mark.parametrize(
    ("text", "token", "rule"),
    [
        ("127.0.0.1 -oN /tmp/x", "-oN", "starts with '-'"),
        ("-iL /etc/passwd", "-iL", "starts with '-'"),
        ("127.0.0.1 --script=/tmp/evil.nse", "--script=/tmp/evil.nse", "starts with '-'"),
        ("127.0.0.1;id", "127.0.0.1;id", "character"),
        ("$(id)", "$(id)", "character"),
        ("`id`", "`id`", "character"),
        ("'127.0.0.1", "'127.0.0.1", "character"),
        ('"127.0.0.1', '"127.0.0.1', "character"),
        ("127.0.0.1|id", "127.0.0.1|id", "character"),
        ("127.0.0.1>x", "127.0.0.1>x", "character"),
        ("fe80::1%eth0", "fe80::1%eth0", "character"),
        ("höst.lab", "höst.lab", "character"),
        ("localhost/30", "localhost/30", "CIDR"),
        ("10.0.0.0/33", "10.0.0.0/33", "CIDR"),
        ("10.0.0.9-3", "10.0.0.9-3", "ends before it starts"),
        ("10.0.0.1-300", "10.0.0.1-300", "IPv4 range"),
        ("1.2.3", "1.2.3", "not an address"),
        ("bad_name.lab", "bad_name.lab", "character"),
        ("-leading.lab", "-leading.lab", "starts with '-'"),
        ("trailing-.lab", "trailing-.lab", "not an address"),
        ("nowhere.lab", "nowhere.lab", "does not resolve"),
    ],
)
def test_refusals_name_the_token_and_the_rule(text: str, token: str, rule: str) -> None:
    with pytest.raises(TargetRefused) as info:
        resolve(text)
    message = str(info.value)
    assert repr(token) in message
    assert rule in message


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("8.8.8.8", "8.8.8.8"),
        ("10.0.1.0/24", "10.0.1.0/24"),
        ("10.0.0.0/23", "10.0.0.0/23"),
        ("10.0.0.250-10.0.1.2", "10.0.0.250-10.0.1.2"),
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_addresses_outside_the_scope_are_refused(text: str, token: str) -> None:
    with pytest.raises(TargetRefused, match="outside the scope") as info:
        resolve(text)
    assert repr(token) in str(info.value)


def test_a_name_with_any_address_outside_the_scope_is_refused() -> None:
    with pytest.raises(TargetRefused) as info:
        resolve("evil.example")
    assert "'evil.example'" in str(info.value)
    assert "93.184.216.34" in str(info.value)
    assert "outside the scope" in str(info.value)


def test_ranges_that_expand_beyond_a_narrow_scope_are_refused() -> None:
    narrow = parse_scope("127.0.0.1/32")
    for text in ("127.0.0.0-3", "127.0.0.0/30"):
        with pytest.raises(TargetRefused, match="outside the scope"):
            resolve_targets(text, narrow, 4096, fake_resolver)
    assert resolve_targets("127.0.0.1", narrow, 4096, fake_resolver).count == 1


def test_the_resolver_is_asked_once_per_name() -> None:
    asked: list[str] = []

    def counting(name: str) -> list[str]:
        asked.append(name)
        return ["127.0.0.1"]

    resolve_targets("a.lab a.lab,a.lab", LOOPBACK, 10, counting)
    assert asked == ["a.lab"]


def test_the_address_cap_is_enforced_without_expanding_networks() -> None:
    with pytest.raises(TargetRefused, match="16777216 addresses") as info:
        resolve_targets("127.0.0.0/8", LOOPBACK, 4096, fake_resolver)
    assert "at most 4096" in str(info.value)
    huge = parse_scope("::/0")
    with pytest.raises(TargetRefused, match="at most 4096"):
        resolve_targets("2001:db8::/32", huge, 4096, fake_resolver)
    assert resolve_targets("127.0.0.0/20", LOOPBACK, 4096, fake_resolver).count == 4096


def test_the_cap_counts_each_address_once() -> None:
    assert resolve("10.0.0.0/30 10.0.0.1 10.0.0.2-3", cap=4).count == 4


def test_mixed_families_are_refused_with_advice() -> None:
    with pytest.raises(TargetRefused, match="separate scans") as info:
        resolve("127.0.0.1 ::1")
    assert "'::1'" in str(info.value)
    with pytest.raises(TargetRefused, match="separate scans"):
        resolve("web.lab v6.lab")
    with pytest.raises(TargetRefused, match="separate scans"):
        resolve("127.0.0.1 v6.lab")


@pytest.mark.parametrize("text", ["", "   ", " , ,"])
def test_no_targets_is_refused(text: str) -> None:
    with pytest.raises(TargetRefused, match="No targets"):
        resolve(text)


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("", ""),
        ("22", "22"),
        ("80,22", "22,80"),
        ("22, 80-90, 85", "22,80-90"),
        ("1-3,4,5", "1-5"),
        ("65535", "65535"),
    ],
)
def test_port_specs_become_one_canonical_element(spec: str, canonical: str) -> None:
    assert parse_ports(spec, cap=100) == canonical


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("0", "1 to 65535"),
        ("70000", "1 to 65535"),
        ("1-", "numbers and ranges"),
        ("-p-", "numbers and ranges"),
        ("22 --script=x", "numbers and ranges"),
        ("22 80", "numbers and ranges"),
        ("T:22", "numbers and ranges"),
        ("90-80", "ends before it starts"),
        ("22,", "numbers and ranges"),
        ("1-200", "at most 100"),
    ],
)
def test_bad_port_specs_are_refused(spec: str, rule: str) -> None:
    with pytest.raises(TargetRefused, match=rule):
        parse_ports(spec, cap=100)
