"""No profile makes a scanned host contact anything outside the scope.

Three checks: which scripts each profile selects, resolved by nmap against its own script.db;
which version probes it sends; and a real safe-scripts scan in network namespaces of an in-scope
HTTP proxy, SOCKS proxy and FTP server that log every host they are asked to reach.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.errors import NmapMissing
from scanner.probes import nmap_probes_file, scoped_probes
from scanner.profiles import PROFILES, Profile
from tests.fixtures_scanner import PYTHON, ROOT, wait_for

pytestmark = pytest.mark.nmap

# Scripts nmap files as default and safe that still send a scanned host to third parties.
LEAKY = frozenset({"http-open-proxy", "socks-open-proxy", "ftp-bounce", "dns-recursion"})
OUTSIDE_CATEGORIES = frozenset({"external", "broadcast"})
OLD_EXPRESSION = "default and safe"
# What safe-scripts ran before: nmap's own probes and every default and safe script.
OLD_SAFE_SCRIPTS = ("-sT", "-T4", "-sV", "--script", OLD_EXPRESSION)

TARGET = "10.213.0.2"
SCOPE = f"{TARGET}/32"
# What the scanner's resolver answers for every name: outside the scope, and routed nowhere.
DECOY = "192.0.2.80"
PORTS = "21,1080,3128"


def selected_scripts(expression: str) -> dict[str, frozenset[str]]:
    """The scripts nmap selects for ``expression`` and their categories (no packet is sent)."""
    out = subprocess.run(
        ["nmap", "--script-help", expression],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    return {
        out[i - 1].strip(): frozenset(line.split()[1:])
        for i, line in enumerate(out)
        if line.startswith("Categories:") and i > 0
    }


def script_expressions(profile: Profile) -> set[str]:
    """Every script selection a profile's arguments make, as or without root."""
    found = set()
    for args in (profile.args, profile.root_args or ()):
        for i, arg in enumerate(args):
            if arg == "--script":
                found.add(args[i + 1])
            if arg in ("-sC", "-A"):
                found.add("default")
            if arg in ("-sV", "-A"):
                found.add("version")  # -sV runs the version category's scripts by itself
    return found


def reaching_out(selected: dict[str, frozenset[str]]) -> set[str]:
    """The selected scripts that send traffic past the target."""
    return {name for name, cats in selected.items() if name in LEAKY or cats & OUTSIDE_CATEGORIES}


def test_default_and_safe_alone_selects_the_scripts_that_reach_out() -> None:
    old = selected_scripts(OLD_EXPRESSION)
    assert set(old) >= LEAKY
    assert "external" in old["http-open-proxy"] and "external" in old["socks-open-proxy"]


def test_no_profile_selects_a_script_that_reaches_past_the_target() -> None:
    checked = 0
    for profile in PROFILES.values():
        for expression in script_expressions(profile):
            selected = selected_scripts(expression)
            assert selected, f"{profile.id}: {expression!r} selects nothing"
            assert not reaching_out(selected), (profile.id, expression)
            checked += 1
    assert checked >= 4  # standard, deep, safe-scripts' version and script selections


def test_safe_scripts_keeps_every_other_default_and_safe_script() -> None:
    args = PROFILES["safe-scripts"].args
    new = selected_scripts(args[args.index("--script") + 1])
    old = selected_scripts(OLD_EXPRESSION)
    assert set(old) - set(new) == reaching_out(old)
    assert {"http-title", "ssl-cert", "ssh-hostkey", "ftp-anon", "smtp-commands"} <= set(new)


def probe_lines(text: str) -> list[str]:
    """The Probe lines of an nmap-service-probes text."""
    return [line for line in text.splitlines() if line.startswith("Probe ")]


def test_version_detection_drops_the_probe_that_sends_proxies_to_google(tmp_path: Path) -> None:
    own = nmap_probes_file("/usr/bin/nmap").read_text(encoding="latin-1")
    assert any("google.com" in line for line in probe_lines(own))
    scoped = scoped_probes("/usr/bin/nmap", tmp_path).read_text(encoding="latin-1")
    assert not any("google.com" in line for line in probe_lines(scoped))
    assert [line for line in probe_lines(own) if "google.com" not in line] == probe_lines(scoped)


def test_the_scoped_probe_file_is_written_once_per_nmap_version(tmp_path: Path) -> None:
    first = scoped_probes("/usr/bin/nmap", tmp_path)
    stamp = first.stat().st_mtime_ns
    assert scoped_probes("/usr/bin/nmap", tmp_path) == first
    assert first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_a_missing_probe_file_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "nmap"
    fake.parent.mkdir()
    fake.write_text("")
    with pytest.raises(NmapMissing, match=r"nmap-service-probes was not found .*reinstall nmap"):
        nmap_probes_file(str(fake), fallbacks=())


@dataclass
class EgressLab:
    """A target namespace with logging proxies and FTP, and a scanner namespace to scan from."""

    scanner_ns: str
    log: Path

    def entries(self) -> list[dict[str, Any]]:
        """Every request the stand-ins logged so far."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [entry for entry in map(json.loads, lines) if "ready" not in entry]

    def asked(self, service: str) -> bool:
        """Whether a stand-in got any request at all."""
        return any(e["service"] == service for e in self.entries())

    def destinations(self, service: str) -> set[str | None]:
        """The hosts one stand-in was asked to reach."""
        return {e["destination"] for e in self.entries() if e["service"] == service}

    def in_scan_netns(self, *argv: str, env: dict[str, str] | None = None) -> str:
        """Run a command in the scanner namespace; its stdout, or fail with its stderr."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.scanner_ns, *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout


def _standin(ns: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, PYTHON, "-m", "tests.proxy_standins", *args], cwd=ROOT
    )


@pytest.fixture
def egress_lab(lab_namespaces: tuple[str, str], tmp_path: Path) -> Iterator[EgressLab]:
    """The lab: stand-ins on the target, and a resolver that answers the decoy to the scanner."""
    scanner_ns, target_ns = lab_namespaces
    # `ip netns exec` mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf: names the
    # scanner looks up go to a stand-in on its own loopback, never to a real server.
    netns_etc = Path("/etc/netns") / scanner_ns
    netns_etc.mkdir(parents=True)
    (netns_etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    log = tmp_path / "requests.jsonl"
    procs = []
    try:
        procs.append(_standin(target_ns, "services", str(log), TARGET))
        procs.append(_standin(scanner_ns, "resolver", str(log), "127.0.0.1", DECOY))
        wait_for(lambda: log.exists() and log.read_text().count('"ready"') == 2, timeout=30)
        yield EgressLab(scanner_ns, log)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(netns_etc, ignore_errors=True)


def outside_scope(destinations: set[str | None]) -> set[str]:
    """The destinations that are neither an address in the scope nor the target's own loopback."""
    scope = ipaddress.ip_network(SCOPE)
    bad = set()
    for dest in destinations - {None}:
        try:
            address = ipaddress.ip_address(str(dest))
        except ValueError:
            bad.add(str(dest))  # a name: only the target's own address is in scope
            continue
        # The target's loopback is the target itself: nmap's Socks4 probe asks for 127.0.0.1:22.
        if address not in scope and not address.is_loopback:
            bad.add(str(dest))
    return bad


def test_the_lab_catches_the_old_safe_scripts_sending_the_target_outside(
    egress_lab: EgressLab,
) -> None:
    egress_lab.in_scan_netns(
        "nmap", *OLD_SAFE_SCRIPTS, "-n", "-Pn", "-p", PORTS, "-oX", "-", "--", TARGET
    )
    assert "www.google.com" in egress_lab.destinations("http-proxy")  # http-open-proxy
    socks = egress_lab.destinations("socks")
    assert "google.com" in socks  # nmap's own Socks5 version probe
    assert DECOY in socks  # socks-open-proxy, for the www.google.com the scanner resolved
    assert DECOY in egress_lab.destinations("ftp")  # ftp-bounce: PORT to scanme.nmap.org
    assert "scanme.nmap.org" in egress_lab.destinations("dns")


@pytest.mark.parametrize("profile", ["safe-scripts", "standard", "deep"])
def test_a_scan_asks_in_scope_servers_for_nothing_outside_the_scope(
    egress_lab: EgressLab, child_env: dict[str, str], profile: str
) -> None:
    env = dict(child_env, SCANSCRIBE_SCOPE=SCOPE)
    stdout = egress_lab.in_scan_netns(
        PYTHON,
        "-m",
        "scanner",
        "scan",
        "--profile",
        profile,
        "--ports",
        PORTS,
        "--format",
        "json",
        "--",
        TARGET,
        env=env,
    )
    (host,) = json.loads(stdout)["hosts"]
    open_ports = {p["port"]: p for p in host["ports"] if p["state"] == "open"}
    assert set(open_ports) == {21, 1080, 3128}
    assert open_ports[3128]["service"] == "http-proxy"  # version detection still ran
    for service in ("http-proxy", "socks", "ftp"):
        assert egress_lab.asked(service), f"the scan never reached the {service} stand-in"
        assert not outside_scope(egress_lab.destinations(service)), service
    assert not egress_lab.asked("dns")  # and the scanner itself looked up no name
