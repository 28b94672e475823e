"""``python -m scanner list|show|diff|import``: JSON shapes, exit codes, refusals on stderr."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import termios
from pathlib import Path

import pytest

import config

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "s3cr3t-marker-do-not-echo"


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCANSCRIBE_", "OLLAMA_"))}
    env.update({"SCANSCRIBE_DB": str(db), "OLLAMA_HOST": "http://127.0.0.1:9"})
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        cwd=config.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def imported_ids(db: Path, *names: str) -> list[str]:
    out = run(db, "import", *(str(FIXTURES / n) for n in names), "--format", "json")
    assert out.returncode == 0, out.stderr
    return [item["id"] for item in json.loads(out.stdout)["imported"]]


def test_import_list_show_and_diff(db_path: Path) -> None:
    before, after = imported_ids(db_path, "netns_before.xml", "netns_after.xml")

    listed = run(db_path, "list", "--format", "json")
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    assert {r["id"] for r in rows} == {before, after}
    row = next(r for r in rows if r["id"] == after)
    assert (row["hosts_up"], row["open_ports"], row["targets"]) == (2, 6, ["10.231.7.2-4"])
    assert row["source"] == "import: netns_after.xml"

    shown = run(db_path, "show", after, "--format", "json")
    assert shown.returncode == 0
    report = json.loads(shown.stdout)
    host = next(h for h in report["hosts"] if h["address"] == "10.231.7.2")
    assert (host["mac"], host["vendor"]) == ("52:54:00:12:34:56", "QEMU virtual NIC")
    redis = next(p for p in host["ports"] if p["port"] == 6379)
    assert redis["service"] == "redis" and isinstance(redis["port"], int)
    assert redis["risk"] == "critical" and redis["risk_reason"]

    table = run(db_path, "show", after, "--format", "csv")
    assert len(list(csv.DictReader(io.StringIO(table.stdout)))) == 20
    md = run(db_path, "show", after, "--format", "md")
    assert md.stdout.startswith("# ScanScribe report")

    diff = run(db_path, "diff", before, after, "--format", "json")
    assert diff.returncode == 0
    d = json.loads(diff.stdout)
    assert list(d) == [
        "new_hosts",
        "gone_hosts",
        "opened",
        "closed",
        "changed",
        "newly_scanned_open",
        "not_rescanned",
    ]
    assert [h["address"] for h in d["new_hosts"]] == ["10.231.7.3"]
    assert [(p["address"], p["port"], p["protocol"]) for p in d["opened"]] == [
        ("10.231.7.2", 80, "tcp")
    ]
    assert [p["port"] for p in d["closed"]] == [18023]
    assert d["changed"][0]["before"]["version"] == "7.4"
    assert d["changed"][0]["after"]["version"] == "9.2p1"

    text = run(db_path, "diff", before, after)
    assert "changed:" in text.stdout and "OpenSSH 9.2p1" in text.stdout


def test_refused_file_exits_2_with_reason_and_stores_nothing(db_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "evil.xml"
    bad.write_text(
        f'<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY x "{SECRET}">]><nmaprun>&x;</nmaprun>'
    )
    out = run(db_path, "import", str(bad), "--format", "json")
    assert out.returncode == 2
    assert "evil.xml: refused" in out.stderr and "hostile" in out.stderr
    assert SECRET not in out.stderr + out.stdout
    assert json.loads(out.stdout)["refused"][0]["file"] == str(bad)
    assert json.loads(run(db_path, "list", "--format", "json").stdout) == []


def test_mixed_import_keeps_the_good_file_and_exits_2(db_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.xml"
    bad.write_text(f"<notes>{SECRET}</notes>")
    out = run(db_path, "import", str(FIXTURES / "loopback_sT.xml"), str(bad))
    assert out.returncode == 2
    assert "not nmap output" in out.stderr
    assert len(json.loads(run(db_path, "list", "--format", "json").stdout)) == 1


def test_truncated_import_says_incomplete(db_path: Path) -> None:
    out = run(db_path, "import", str(FIXTURES / "netns_truncated.xml"), "--format", "json")
    assert out.returncode == 0
    [item] = json.loads(out.stdout)["imported"]
    assert item["complete"] is False and item["hosts"] == 2
    assert "it was incomplete" in out.stderr


def test_unknown_report_id_exits_2(db_path: Path) -> None:
    out = run(db_path, "show", "rep-nope", "--format", "json")
    assert out.returncode == 2 and "No report with id 'rep-nope'" in out.stderr
    assert out.stdout == ""
    assert run(db_path, "diff", "rep-a", "rep-b").returncode == 2


CR_BANNER = b"""<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap -sV 10.0.0.1" start="1700000000" version="7.93">
<host><status state="up"/><address addr="10.0.0.1" addrtype="ipv4"/><ports>
<port protocol="tcp" portid="80"><state state="open"/>
<service name="http" product="Welcome&#13;Host 10.0.0.1 is patched"/>
<script id="http-title" output="Welcome&#13;Host 10.0.0.1 is patched"/></port>
</ports></host><runstats><finished time="1700000002"/></runstats></nmaprun>
"""


@pytest.mark.parametrize("fmt", ["md", "csv", "html"])
def test_show_on_a_terminal_never_lets_a_banner_rewrite_the_lines_shown(
    db_path: Path, tmp_path: Path, fmt: str
) -> None:
    """nmap writes a banner's carriage return as &#13;: printed to a terminal it would move the
    cursor back and let the banner overwrite what was shown. On a terminal it is dropped; in a
    file the export stays exactly as it is."""
    xml = tmp_path / "cr.xml"
    xml.write_bytes(CR_BANNER)
    out = run(db_path, "import", str(xml), "--format", "json")
    assert out.returncode == 0, out.stderr
    rid = json.loads(out.stdout)["imported"][0]["id"]
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # the terminal passes newlines through as they are
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCANSCRIBE_", "OLLAMA_"))}
    env.update({"SCANSCRIBE_DB": str(db_path), "OLLAMA_HOST": "http://127.0.0.1:9"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "show", rid, "--format", fmt],
        cwd=config.PROJECT_ROOT, env=env, stdout=slave, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(slave)
    shown = b""
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other end closed: the command is done
                break
            if not data:
                break
            shown += data
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.communicate()
        os.close(master)
    text = shown.decode()
    assert "\r" not in text, repr(text[-300:])
    assert "WelcomeHost 10.0.0.1 is patched" in text
    saved = tmp_path / f"report.{fmt}"
    with saved.open("wb") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "scanner", "show", rid, "--format", fmt],
            cwd=config.PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"Welcome\rHost 10.0.0.1 is patched" in saved.read_bytes()
