"""Offline feeds: NVD CVE JSON 2.0 and CISA KEV files imported, matched to -sV services, refused.

The feed files in tests/data/feeds are small, written for these tests in the real schemas. The
scan matched against them is DefectDojo's real vulners scan from the shared corpus (OpenSSH 7.4,
MySQL 5.7.32), plus services built here for the version-range edges.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import config
from feeds import import_file, open_feed_store
from feeds.match import guesses, in_range
from feeds.models import GUESS_NOTE, CpeRange, FeedRefused
from feeds.storage import FeedStore, SQLiteFeedStore
from scanner.importer import import_bytes
from scanner.models import Host, Port, Report
from scanner.parser import parse_report
from store.sqlite import SQLiteStore
from tests.test_reports_cli import run

DATA = Path(__file__).parent / "data" / "feeds"
NVD = DATA / "nvd_sample.json"
KEV = DATA / "kev_sample.json"
SCAN = config.PROJECT_ROOT.parent / "shared" / "corpus" / "real-nmap" / "real"
VULNERS = SCAN / "DefectDojo__nmap_issue4406.xml"


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def feed_store(request: pytest.FixtureRequest) -> Iterator[FeedStore]:
    """The feed store of each backend, empty."""
    if request.param == "sqlite":
        store: FeedStore = SQLiteFeedStore(request.getfixturevalue("db_path"))
    else:
        store = open_feed_store(request.getfixturevalue("firestore_config"))
    yield store
    store.close()


def status(db: Path) -> dict[str, object]:
    out = run(db, "feeds", "status", "--format", "json")
    assert out.returncode == 0, out.stderr
    data: dict[str, object] = json.loads(out.stdout)
    return data


def service(port: int, cpe: str, version: str, product: str = "") -> Port:
    return Port(port, "tcp", "open", service="x", product=product, version=version, cpe=(cpe,))


# -- matching --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("7.4", True),
        ("9.3p1", True),
        ("9.3", True),
        ("9.3p2", False),
        ("9.6", False),
        ("10.0", False),
        ("", False),
    ],
)
def test_end_excluding_bound(version: str, expected: bool) -> None:
    r = CpeRange("CVE-2023-38408", "a", "openbsd", "openssh", "*", end_excl="9.3p2")
    assert in_range(version, r) is expected


def test_real_scan_ssh_matches_the_ranges_and_mysql_matches_nothing(feed_store: FeedStore) -> None:
    import_file(feed_store, NVD)
    import_file(feed_store, KEV)
    report = parse_report(VULNERS.read_bytes(), report_id="dd")
    found = guesses(feed_store, report)
    [address] = {h.address for h in report.hosts}
    ssh = found[(address, 22, "tcp")]
    assert [(g.cve_id, g.cvss, g.known_exploited) for g in ssh] == [
        ("CVE-2023-38408", 9.8, False),
        ("CVE-2016-20012", 5.3, True),
    ]
    assert all(g.note == GUESS_NOTE == "version guess — verify" for g in ssh)
    assert "openbsd:openssh" in ssh[0].matched and "< 9.3p2" in ssh[0].matched
    assert list(found) == [(address, 22, "tcp")]


def test_version_ranges_match_inside_and_not_outside(feed_store: FeedStore) -> None:
    import_file(feed_store, NVD)
    import_file(feed_store, KEV)
    ports = (
        service(1, "cpe:/a:apache:http_server", "2.4.49", "Apache httpd"),  # version from -sV
        service(2, "cpe:/a:apache:http_server:2.4.50", "2.4.50"),
        service(3, "cpe:/a:f5:nginx:1.18.0", "1.18.0"),
        service(4, "cpe:/a:f5:nginx:1.20.1", "1.20.1"),  # end excluded
        service(5, "cpe:/a:f5:nginx:0.6.17", "0.6.17"),  # before the start
        service(6, "cpe:/a:f5:nginx:0.6.18", "0.6.18"),  # start included
        service(7, "cpe:/a:openbsd:openssh:9.6p1", "9.6p1"),
        service(8, "cpe:/a:openbsd:openssh", ""),  # no version: no guess
        Port(9, "tcp", "closed", version="2.4.49", cpe=("cpe:/a:apache:http_server:2.4.49",)),
    )
    report = Report(id="r", hosts=(Host("10.0.0.9", ports=ports),))
    found = {
        port: [g.cve_id for g in gs] for (_a, port, _p), gs in guesses(feed_store, report).items()
    }
    assert found == {1: ["CVE-2021-41773"], 3: ["CVE-2021-23017"], 6: ["CVE-2021-23017"]}
    [apache] = guesses(feed_store, report)[("10.0.0.9", 1, "tcp")]
    assert apache.known_exploited and apache.cvss == 7.5


def test_store_keeps_counts_and_imports_newest_first(feed_store: FeedStore) -> None:
    import_file(feed_store, NVD, now=100.0)
    import_file(feed_store, KEV, now=200.0)
    import_file(feed_store, NVD, now=300.0)  # again: replaces, never duplicates
    assert feed_store.counts() == {"cves": 4, "ranges": 4, "kev": 2}
    assert [(i.kind, i.count, i.imported_at) for i in feed_store.imports()] == [
        ("nvd", 4, 300.0),
        ("kev", 2, 200.0),
        ("nvd", 4, 100.0),
    ]


# -- refusals --------------------------------------------------------------------------------------
def _nvd_doc() -> dict[str, object]:
    doc: dict[str, object] = json.loads(NVD.read_text())
    return doc


BAD = {
    "truncated.json": NVD.read_bytes()[: len(NVD.read_bytes()) // 2],
    "nvd11.json": json.dumps(
        {"CVE_data_type": "CVE", "CVE_data_format": "MITRE", "CVE_Items": []}
    ).encode(),
    "other.json": json.dumps({"hosts": [], "format": "something else"}).encode(),
    "kev_short.json": json.dumps(
        {**json.loads(KEV.read_text()), "count": 3}
    ).encode(),  # says 3, holds 2
    "nvd_no_id.json": json.dumps(
        {
            **_nvd_doc(),
            "resultsPerPage": 1,
            "vulnerabilities": [{"cve": {"descriptions": []}}],
        }
    ).encode(),
    "array.json": b"[1, 2, 3]",
}
REASONS = {
    "truncated.json": "not complete JSON",
    "nvd11.json": "NVD 1.1",
    "other.json": "not a feed",
    "kev_short.json": "says it holds 3",
    "nvd_no_id.json": "no CVE id",
    "array.json": "not a feed",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_feed_file_is_refused_with_exit_2_and_nothing_stored(
    name: str, tmp_path: Path, db_path: Path
) -> None:
    bad = tmp_path / name
    bad.write_bytes(BAD[name])
    out = run(db_path, "feeds", "import", str(bad))
    assert out.returncode == 2
    assert name in out.stderr and REASONS[name] in out.stderr
    assert "Nothing was stored" in out.stderr
    assert status(db_path) == {"cves": 0, "ranges": 0, "known_exploited": 0, "imports": []}


def test_a_refused_file_leaves_earlier_imports_as_they_were(
    tmp_path: Path, feed_store: FeedStore
) -> None:
    import_file(feed_store, NVD, now=1.0)
    bad = tmp_path / "kev.json"
    bad.write_bytes(KEV.read_bytes()[:-40])
    with pytest.raises(FeedRefused, match="truncated"):
        import_file(feed_store, bad)
    assert feed_store.counts() == {"cves": 4, "ranges": 4, "kev": 0}
    assert len(feed_store.imports()) == 1


# -- command line ----------------------------------------------------------------------------------
def test_cli_imports_feeds_and_show_json_lists_guesses_apart_from_reported_cves(
    db_path: Path,
) -> None:
    out = run(db_path, "feeds", "import", str(NVD), str(KEV))
    assert out.returncode == 0, out.stderr
    assert "4 entries of NVD CVE JSON 2.0" in out.stdout
    st = status(db_path)
    assert (st["cves"], st["ranges"], st["known_exploited"]) == (4, 4, 2)
    text = run(db_path, "feeds", "status")
    assert "nvd_sample.json" in text.stdout and "kev_sample.json" in text.stdout

    store = SQLiteStore(db_path)
    try:
        rid = import_bytes(store, VULNERS.read_bytes(), filename=VULNERS.name).id
    finally:
        store.close()
    shown = run(db_path, "show", rid, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    [host] = json.loads(shown.stdout)["hosts"]
    ssh = next(p for p in host["ports"] if p["port"] == 22)
    assert [g["id"] for g in ssh["cve_guesses"]] == ["CVE-2023-38408", "CVE-2016-20012"]
    assert ssh["cve_guesses"][1]["known_exploited"] is True
    assert {g["note"] for g in ssh["cve_guesses"]} == {"version guess — verify"}
    # The scan's own findings stay in "cves", from vulners, and are not guesses.
    assert ssh["cves"] and {c["source"] for c in ssh["cves"]} == {"vulners"}
    assert not {c["id"] for c in ssh["cves"]} & {g["id"] for g in ssh["cve_guesses"]}
