"""Profiles: fixed argument lists, and the command line nmap gets for validated targets."""

from __future__ import annotations

from typing import Any

import pytest

from config import parse_scope
from scanner.errors import TargetRefused
from scanner.profiles import PROFILES, build_argv, get_profile
from scanner.targets import parse_ports, resolve_targets

SCOPE = parse_scope("127.0.0.0/8,::1/128")
REQUIRED = ("quick", "standard", "full-tcp", "deep", "safe-scripts", "udp")


PROBES = "/var/lib/scanscribe/probes/nmap-service-probes.0123abcd"


def targets(text: str):  # type: ignore[no-untyped-def]
    return resolve_targets(text, SCOPE, 4096, lambda name: [])


def argv_of(profile: str, text: str = "127.0.0.1", **options: Any) -> list[str]:
    """The command line of a profile, with the scoped probe file every -sV profile needs."""
    return build_argv(PROFILES[profile], targets(text), versiondb=PROBES, **options)


def test_every_required_profile_exists_with_limits() -> None:
    for pid in REQUIRED:
        p = PROFILES[pid]
        assert p.host_timeout, pid
        assert p.timeout_s > 0, pid
        argv = argv_of(pid)
        assert argv[argv.index("--host-timeout") + 1] == p.host_timeout


def test_profiles_ask_for_what_the_names_promise() -> None:
    assert argv_of("quick")[1:5] == [
        "-sT",
        "-T4",
        "--top-ports",
        "100",
    ]
    standard = argv_of("standard")
    assert "-sV" in standard and "1000" in standard
    full = argv_of("full-tcp")
    assert "-p-" in full and "--min-rate" in full and "-sT" in full
    # As root, full-tcp trades the connect scan for SYN probes: same ports, far fewer handshakes.
    full_root = argv_of("full-tcp", root=True)
    assert full_root[1] == "-sS" and full_root[2:] == full[2:]
    assert argv_of("quick", root=True)[1] == "-sT"
    deep = argv_of("deep")
    assert "-O" in deep and "-sV" in deep
    scripts = argv_of("safe-scripts")
    expression = scripts[scripts.index("--script") + 1]
    assert expression.startswith("(default and safe) and not external and not broadcast")
    for leaky in ("http-open-proxy", "socks-open-proxy", "ftp-bounce", "dns-recursion"):
        assert leaky in expression.rsplit("and not (", 1)[1], leaky
    assert "-sU" in argv_of("udp")
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
    argv = argv_of("full-tcp", ports=spec)
    assert argv[argv.index("-p") + 1] == "22,80-81,443"
    assert "-p-" not in argv and "--top-ports" not in argv
    assert argv.count("-p") == 1


def test_no_output_file_or_script_options_except_the_fixed_ones() -> None:
    forbidden = ("-oN", "-oG", "-oA", "-iL", "--excludefile", "--datadir", "--resume", "-e", "-S")
    for p in PROFILES.values():
        argv = argv_of(p.id)
        assert not set(forbidden) & set(argv), p.id
        assert argv.count("-oX") == 1


def test_unknown_profile_is_refused_with_the_list() -> None:
    with pytest.raises(TargetRefused, match="quick") as info:
        get_profile("quick -oN /tmp/x")
    assert "'quick -oN /tmp/x'" in str(info.value)


def test_version_detection_reads_the_scoped_probe_file_before_the_targets() -> None:
    for pid in ("standard", "deep", "safe-scripts"):
        argv = argv_of(pid)
        assert argv[argv.index("--versiondb") + 1] == PROBES, pid
        assert argv.index("--versiondb") < argv.index("--"), pid
    for pid in ("quick", "full-tcp", "udp"):
        assert "--versiondb" not in argv_of(pid), pid


def test_a_version_profile_without_the_scoped_probe_file_is_never_built() -> None:
    with pytest.raises(ValueError, match="'standard' detects versions"):
        build_argv(PROFILES["standard"], targets("127.0.0.1"))


def test_profile_listing_shows_the_arguments() -> None:
    assert (
        PROFILES["safe-scripts"]
        .command()
        .endswith(
            '-sV --script "(default and safe) and not external and not broadcast and not '
            '(http-open-proxy or socks-open-proxy or ftp-bounce or dns-recursion)" '
            "--top-ports 1000 --host-timeout 30m"
        )
    )
