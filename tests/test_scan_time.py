"""Reports are dated and ordered by when their scan ran; an import also shows when it came in."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from store.base import Store
from tests import test_store_contract
from tests.store_samples import small_report
from tests.test_diff import CORPUS, nmap_xml
from tests.test_reports_cli import FIXTURES, run

OLD_SCAN = "phage__nmap-2016-04-10-11-36-46.xml"  # nmap ran it on 2016-04-10


# Every test taking ``store`` runs once per backend, as the store contract does.
store = test_store_contract.store


def test_the_history_lists_newest_scan_first_not_newest_import(store: Store) -> None:
    scanned = small_report("rep-scanned", 2_000.0)
    # Saved last, but its scan ran first; one more has no scan time and falls back to its save.
    imported = replace(small_report("rep-imported", 3_000.0), started_at=500.0)
    undated = small_report("rep-undated", 1_000.0)
    for r in (scanned, imported, undated):
        store.save_report(r)
    rows = store.list_reports()
    assert [r.id for r in rows] == ["rep-scanned", "rep-undated", "rep-imported"]
    assert [r.scanned_at for r in rows] == [2_000.0, 1_000.0, 500.0]
    assert rows[2].created_at == 3_000.0, "the import time is kept beside the scan time"
    assert [r.id for r in store.list_reports(limit=2)] == ["rep-scanned", "rep-undated"]


def test_cli_list_dates_an_import_by_its_scan_and_shows_the_import_time(db_path: Path) -> None:
    imported = run(db_path, "import", str(FIXTURES / "netns_after.xml"), str(CORPUS / OLD_SCAN))
    assert imported.returncode == 0, imported.stderr
    rows = json.loads(run(db_path, "list", "--format", "json").stdout)
    assert [r["source"] for r in rows] == ["import: netns_after.xml", f"import: {OLD_SCAN}"]
    old = rows[1]
    assert old["scanned_at"] == "2016-04-10T18:36:46Z"
    assert old["created_at"] > "2025", "imported now, scanned in 2016"
    table = run(db_path, "list").stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "SCANNED", "IMPORTED", "TARGETS"]
    assert table[2].split()[1] == "2016-04-10T18:36:46Z"


def test_cli_diff_counts_open_on_a_newly_scanned_port_apart(db_path: Path, tmp_path: Path) -> None:
    (tmp_path / "few.xml").write_bytes(nmap_xml("22,80", (22, "open")))
    (tmp_path / "all.xml").write_bytes(
        nmap_xml("1-65535", (22, "open"), (80, "open"), (8443, "open"))
    )
    out = run(
        db_path, "import", str(tmp_path / "few.xml"), str(tmp_path / "all.xml"), "--format", "json"
    )
    few, every = (item["id"] for item in json.loads(out.stdout)["imported"])
    d = json.loads(run(db_path, "diff", few, every, "--format", "json").stdout)
    assert [p["port"] for p in d["opened"]] == [80]
    assert [(p["port"], p["state_before"]) for p in d["newly_scanned_open"]] == [
        (8443, "not scanned")
    ]
    text = run(db_path, "diff", few, every).stdout
    opened, found = text.split("\nopen, not scanned before:")
    assert "8443" not in opened and "8443/tcp" in found
