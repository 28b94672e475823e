"""The Reports page dates reports by scan time, shows import time apart, and diffs by coverage."""

from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest

from scanner.importer import import_bytes
from store.sqlite import SQLiteStore
from tests import test_reports_page
from tests.test_diff import CORPUS, nmap_xml
from tests.test_reports_page import FIXTURES, metrics, page

app_env = test_reports_page.app_env
OLD_SCAN = "phage__nmap-2016-04-10-11-36-46.xml"


def history(at: AppTest) -> pd.DataFrame:
    [df] = [d.value for d in at.dataframe if "imported" in d.value.columns]
    return df


def test_history_dates_an_old_import_by_its_scan(app_env: SQLiteStore) -> None:
    recent = import_bytes(app_env, (FIXTURES / "netns_after.xml").read_bytes(), filename="a.xml")
    old = import_bytes(app_env, (CORPUS / OLD_SCAN).read_bytes(), filename="2016.xml")
    at = page()
    assert not at.exception
    rows = history(at)
    assert rows["id"].tolist() == [recent.id, old.id], "newest scan first, not newest import"
    assert rows["scanned"].iloc[1].startswith("2016-04-1")
    assert rows["imported"].iloc[1][:4] >= "2025", "the import time is shown apart"
    assert at.selectbox(key="report_pick").value == recent.id


def test_diff_view_counts_open_on_a_newly_scanned_port_apart(app_env: SQLiteStore) -> None:
    few = import_bytes(app_env, nmap_xml("22,80", (22, "open")), filename="few.xml")
    every = nmap_xml("1-65535", (22, "open"), (80, "open"), (8443, "open"))
    # The same moment of scan would tie; the full scan ran an hour later.
    every = every.replace(b'start="1700000000"', b'start="1700003600"')
    full = import_bytes(app_env, every, filename="all.xml")
    at = page()
    assert at.selectbox(key="diff_old").value == few.id
    assert at.selectbox(key="diff_new").value == full.id
    assert metrics(at)["Opened ports"] == "1"
    assert "1 open port(s) the earlier scan never probed" in "\n".join(i.value for i in at.info)
    found = [d.value for d in at.dataframe if "before" in d.value.columns]
    assert any(df["port"].tolist() == ["8443/tcp"] for df in found)
