"""nmap's version-detection probes, minus those that send a scanned host to a third party.

``-sV`` tries nmap's ``Socks5`` probe on 1080, 3128, 8080 and other proxy ports whatever the
version intensity: a SOCKS5 greeting followed by CONNECT google.com:80 and a GET through it, so
an in-scope open proxy would fetch a page from outside the scope. Profiles that detect versions
therefore run with ``--versiondb`` pointing at a copy of nmap's own probe file without such
probes. The copy is derived from the installed file on each run, never shipped.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from scanner.errors import NmapMissing
from scanner.nmapbin import install_hint

PROBES_FILE = "nmap-service-probes"
# Probes whose payload asks the scanned service to connect somewhere else.
THIRD_PARTY_PROBES = frozenset({"Socks5"})  # CONNECT google.com:80, then GET / through it


SYSTEM_FOLDERS = (Path("/usr/share/nmap"), Path("/usr/local/share/nmap"))


def nmap_probes_file(nmap: str, fallbacks: tuple[Path, ...] = SYSTEM_FOLDERS) -> Path:
    """The probe file the given nmap binary reads by default."""
    binary = Path(nmap)
    # nmap looks beside its own installation first (apt, Homebrew, /usr/local builds).
    beside = (binary.resolve().parent.parent, binary.parent.parent)
    for folder in (*(b / "share" / "nmap" for b in beside), *fallbacks):
        if (folder / PROBES_FILE).is_file():
            return folder / PROBES_FILE
    raise NmapMissing(
        f"nmap's {PROBES_FILE} was not found beside {nmap}; "
        f"reinstall nmap ({install_hint()}) so version detection has its probes."
    )


def without_third_party_probes(text: str) -> str:
    """The probe file's text without the blocks (a Probe line and its matches) that leak."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith("Probe "):
            fields = line.split(maxsplit=3)
            skipping = len(fields) > 2 and fields[2] in THIRD_PARTY_PROBES
        if not skipping:
            kept.append(line)
    return "".join(kept)


def scoped_probes(nmap: str, folder: Path) -> Path:
    """A copy of nmap's probes without third-party ones in ``folder``, written when it changes."""
    # latin-1 reads every byte as one character, so the copy is byte for byte nmap's own text.
    text = without_third_party_probes(nmap_probes_file(nmap).read_text(encoding="latin-1"))
    data = text.encode("latin-1")
    target = folder / f"{PROBES_FILE}.{hashlib.sha256(data).hexdigest()[:16]}"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        # Another process may write the same copy at the same time: both write the same bytes.
        os.replace(partial, target)
    return target
