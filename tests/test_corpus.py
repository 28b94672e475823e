"""Every real nmap XML file of the shared corpus imports exactly what it holds.

The corpus (``../shared/corpus/real-nmap``, read in place) holds 40 files that other projects
committed: nmap 3.27 to 7.98, Windows line ends, iso-8859-1, UDP, IPv6, vulners output, a 1 MB
script attribute, interrupted runs and a corrupt file. ``expected.json`` gives each file's hosts
and open ports as ElementTree counts them, or, for a file that does not parse, the complete hosts
a streaming parser sees before the break.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from config import PROJECT_ROOT
from scanner.errors import ImportRefused
from scanner.importer import import_bytes
from store.sqlite import SQLiteStore

CORPUS = PROJECT_ROOT.parent / "shared" / "corpus" / "real-nmap"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())


def test_the_corpus_is_all_there() -> None:
    files = sorted(p.name for p in (CORPUS / "real").iterdir())
    assert files == sorted(EXPECTED) and len(files) == 40


def _truth(name: str) -> tuple[dict[str, Any], bool]:
    """The expected counts of a file, and whether the whole file parses."""
    entry = EXPECTED[name]
    if entry["parse_error"] is None:
        return entry, True
    return entry["partial_before_error"], False


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_real_nmap_file_imports_exactly_its_hosts_and_open_ports(
    name: str, sqlite_store: SQLiteStore
) -> None:
    truth, whole = _truth(name)
    data = (CORPUS / "real" / name).read_bytes()
    if truth["hosts_total"] == 0 and not whole:
        # Broken off or corrupt before any complete host: the only files that are refused.
        with pytest.raises(ImportRefused, match="before any complete host; nothing was imported"):
            import_bytes(sqlite_store, data, filename=name)
        assert sqlite_store.list_reports() == []
        return
    report = sqlite_store.get_report(import_bytes(sqlite_store, data, filename=name).id)
    open_ports = sorted(
        f"{h.address}/{p.protocol}/{p.port}"
        for h in report.hosts
        for p in h.ports
        if p.state == "open"
    )
    assert open_ports == sorted(truth["open_port_keys"])
    assert len(report.hosts) == truth["hosts_total"]
    assert report.hosts_up == truth["hosts_up"]
    assert report.complete is whole
    if not whole:
        assert report.note == f"the file stops after host {truth['hosts_total']}; it was incomplete"
