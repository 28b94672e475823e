"""Profiles: fixed argument lists, and the command line nmap gets for validated targets."""

from __future__ import annotations

import pytest

from config import parse_scope
from scanner.errors import TargetRefused
from scanner.profiles import PROFILES, build_argv, get_profile
from scanner.targets import parse_ports, resolve_targets

SCOPE = parse_scope("127.0.0.0/8,::1/128")
REQUIRED = ("quick", "standard", "full-tcp", "deep", "safe-scripts", "udp")


def targets(text: str):  # type: ignore[no-untyped-def]
    return resolve_targets(text, SCOPE, 4096, lambda name: [])


def test_every_required_profile_exists_with_limits() -> None:
    for pid in REQUIRED:
        p = PROFILES[pid]
        assert p.host_timeout, pid
        assert p.timeout_s > 0, pid
        argv = build_argv(p, targets("127.0.0.1"))
        assert argv[argv.index("--host-timeout") + 1] == p.host_timeout


def test_profiles_ask_for_what_the_names_promise() -> None:
    assert build_argv(PROFILES["quick"], targets("127.0.0.1"))[1:5] == [
        "-sT",
        "-T4",
        "--top-ports",
        "100",
    ]
    standard = build_argv(PROFILES["standard"], targets("127.0.0.1"))
    assert "-sV" in standard and "1000" in standard
    full = build_argv(PROFILES["full-tcp"], targets("127.0.0.1"))
    assert "-p-" in full and "--min-rate" in full and "-sT" in full
    # As root, full-tcp trades the connect scan for SYN probes: same ports, far fewer handshakes.
    full_root = build_argv(PROFILES["full-tcp"], targets("127.0.0.1"), root=True)
    assert full_root[1] == "-sS" and full_root[2:] == full[2:]
    assert build_argv(PROFILES["quick"], targets("127.0.0.1"), root=True)[1] == "-sT"
    deep = build_argv(PROFILES["deep"], targets("127.0.0.1"))
    assert "-O" in deep and "-sV" in deep
    scripts = build_argv(PROFILES["safe-scripts"], targets("127.0.0.1"))
    assert scripts[scripts.index("--script") + 1] == "default and safe"
    assert "-sU" in build_argv(PROFILES["udp"], targets("127.0.0.1"))
    assert PROFILES["deep"].needs_root and PROFILES["udp"].needs_root
    assert not any(PROFILES[p].needs_root for p in ("quick", "standard", "full-tcp"))


def test_argv_ends_with_double_dash_then_numeric_addresses_only() -> None:
    argv = build_argv(PROFILES["quick"], targets("127.0.0.1 127.0.0.8/30"), nmap="/usr/bin/nmap")
    assert argv[0] == "/usr/bin/nmap"
    cut = argv.index("--")
    assert argv[cut + 1 :] == ["127.0.0.1", "127.0.0.8/30"]
    opts = argv[:cut]
    assert "-n" in opts
    assert opts[opts.index("-oX") + 1] == "-"
    assert opts[opts.index("--stats-every") + 1] == "1s"
    assert "-6" not in opts


def test_ipv6_targets_get_dash_six() -> None:
    argv = build_argv(PROFILES["quick"], targets("::1"))
    assert "-6" in argv[: argv.index("--")]
    assert argv[-1] == "::1"


def test_ports_replace_the_profile_selection_as_one_element() -> None:
    spec = parse_ports("443, 22,80-81")
    argv = build_argv(PROFILES["full-tcp"], targets("127.0.0.1"), spec)
    assert argv[argv.index("-p") + 1] == "22,80-81,443"
    assert "-p-" not in argv and "--top-ports" not in argv
    assert argv.count("-p") == 1


def test_no_output_file_or_script_options_except_the_fixed_ones() -> None:
    forbidden = ("-oN", "-oG", "-oA", "-iL", "--excludefile", "--datadir", "--resume", "-e", "-S")
    for p in PROFILES.values():
        argv = build_argv(p, targets("127.0.0.1"))
        assert not set(forbidden) & set(argv), p.id
        assert argv.count("-oX") == 1


def test_unknown_profile_is_refused_with_the_list() -> None:
    with pytest.raises(TargetRefused, match="quick") as info:
        get_profile("quick -oN /tmp/x")
    assert "'quick -oN /tmp/x'" in str(info.value)


def test_profile_listing_shows_the_arguments() -> None:
    assert (
        PROFILES["safe-scripts"]
        .command()
        .endswith('-sV --script "default and safe" --top-ports 1000 --host-timeout 30m')
    )
