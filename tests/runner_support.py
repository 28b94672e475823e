"""A stand-in nmap whose scan lasts until the test says so, for store-outage drills.

It writes nmap's XML stream the way ``nmap -oX - --stats-every 1s`` does: the opening of the
run, a ``<taskprogress>`` line every 0.1 s while a release file is absent, then one host with
one open port and the closing of the run. The runner cannot tell it from nmap, and the test
decides when the scan ends.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sT 127.0.0.1" start="1795314050" version="7.93" \
xmloutputversion="1.05">
<scaninfo type="connect" protocol="tcp" numservices="1" services="{port}"/>
<taskbegin task="Connect Scan" time="1795314050"/>"""
TAIL = """<taskend task="Connect Scan" time="1795314060"/>
<host starttime="1795314050" endtime="1795314060"><status state="up" reason="localhost-response"/>
<address addr="127.0.0.1" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="{port}"><state state="open" reason="syn-ack"/></port></ports>
</host>
<runstats><finished time="1795314060" elapsed="10" exit="success"/>\
<hosts up="1" down="0" total="1"/></runstats>
</nmaprun>"""

SCRIPT = """#!/bin/sh
cat <<'EOF'
{head}
EOF
i=0
while [ ! -e {release} ]; do
  i=$((i + 1))
  echo '<taskprogress task="Connect Scan" time="1795314051" percent="'$((i % 99))'" \
remaining="5" etime="1"/>'
  sleep 0.1
done
cat <<'EOF'
{tail}
EOF
"""


class HeldScan:
    """A stand-in nmap on PATH; every scan it runs ends once :meth:`release` is called."""

    def __init__(self, folder: Path, port: int) -> None:
        self.port = port
        self.release_file = folder / "release"
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True)
        nmap = self.bin / "nmap"
        nmap.write_text(
            SCRIPT.format(
                head=HEAD.format(port=port),
                tail=TAIL.format(port=port),
                release=shlex.quote(str(self.release_file)),
            )
        )
        nmap.chmod(0o755)

    def release(self) -> None:
        """Let every scan, running or still to come, end with its report."""
        self.release_file.touch()


@pytest.fixture(name="held_scan")
def held_scan_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HeldScan:
    """nmap replaced by a stand-in whose scans run until the test releases them."""
    held = HeldScan(tmp_path / "held-nmap", 4321)
    monkeypatch.setenv("PATH", f"{held.bin}{os.pathsep}{os.environ['PATH']}")
    return held


@pytest.fixture(name="lookalike_nmap")
def lookalike_nmap_fixture(tmp_path: Path) -> Iterator[int]:
    """A live local process group led by a program named nmap (a copy of sleep): what a
    recorded process group number may point at on this machine by chance."""
    nmap = tmp_path / "lookalike" / "nmap"
    nmap.parent.mkdir()
    shutil.copy("/bin/sleep", nmap)
    proc = subprocess.Popen([str(nmap), "120"], start_new_session=True)
    yield proc.pid
    proc.kill()
    proc.wait()
