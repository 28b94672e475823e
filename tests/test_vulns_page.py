"""The Reports page's vulnerability block through AppTest: reported CVEs, then feed guesses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from feeds import import_file
from feeds.storage import SQLiteFeedStore
from scanner.importer import import_bytes
from store.sqlite import SQLiteStore
from tests.test_feeds import KEV, NVD
from tests.test_reports_page import app_env, page  # noqa: F401  (the fixture is used by name)
from tests.test_vuln_findings import VULNERS, script_elements

CVE_COLUMNS = {"cve", "cvss", "exploit", "state", "source", "evidence"}
GUESS_COLUMNS = {"cve", "cvss", "known_exploited", "matched", "note"}


def table(at: AppTest, columns: set[str]) -> pd.DataFrame | None:
    found = [d.value for d in at.dataframe if columns <= set(d.value.columns)]
    assert len(found) <= 1
    return found[0] if found else None


def captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_reported_cves_per_port_by_score_with_the_script_as_source(
    app_env: SQLiteStore,  # noqa: F811
) -> None:
    import_bytes(app_env, VULNERS.read_bytes(), filename=VULNERS.name)
    at = page()
    assert not at.exception, at.exception
    cves = table(at, CVE_COLUMNS)
    assert cves is not None
    assert set(cves["port"]) == {"22/tcp"}
    expected = {
        e.text
        for e in script_elements(VULNERS, "vulners")["22/tcp"].iter("elem")
        if e.get("key") == "id" and (e.text or "").startswith("CVE-")
    }
    assert set(cves["cve"]) == expected
    assert list(cves["cvss"]) == sorted(cves["cvss"], reverse=True)
    assert set(cves["source"]) == {"vulners"}
    top = cves.iloc[0]
    assert (top["cve"], top["cvss"], bool(top["exploit"])) == ("CVE-2019-6111", 5.8, True)
    # No feed yet: the guesses block says how to bring one, and shows no table.
    assert table(at, GUESS_COLUMNS) is None
    assert "No offline feed imported" in captions(at)


def test_feed_guesses_are_shown_apart_and_marked_to_verify(
    app_env: SQLiteStore,  # noqa: F811
    db_path: Path,
) -> None:
    import_bytes(app_env, VULNERS.read_bytes(), filename=VULNERS.name)
    feeds = SQLiteFeedStore(db_path)
    import_file(feeds, NVD)
    import_file(feeds, KEV)
    at = page()
    assert not at.exception, at.exception
    guesses = table(at, GUESS_COLUMNS)
    assert guesses is not None
    assert list(guesses["cve"]) == ["CVE-2023-38408", "CVE-2016-20012"]
    assert set(guesses["port"]) == {"22/tcp"}
    assert set(guesses["note"]) == {"version guess — verify"}
    assert list(guesses["known_exploited"]) == [False, True]
    # The scan's own findings stay in their table; no guess is mixed into it.
    cves = table(at, CVE_COLUMNS)
    assert cves is not None and not set(cves["cve"]) & set(guesses["cve"])

    # Filtering the ports to MySQL leaves no guess and no reported CVE.
    at.text_input(key="filter_port").input("30367").run()
    assert table(at, GUESS_COLUMNS) is None and table(at, CVE_COLUMNS) is None
    assert "No imported CVE's affected versions include" in captions(at)
