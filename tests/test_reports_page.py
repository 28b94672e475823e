"""The Reports page through AppTest: pick a report, filter, diff, download, import, delete."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

import ui
from config import PROJECT_ROOT as ROOT
from scanner.importer import import_bytes
from store.records import Summary
from store.sqlite import SQLiteStore

FIXTURES = Path(__file__).parent / "fixtures"
PAGE = str(ROOT / "pages" / "reports.py")
SECRET = "s3cr3t-marker-do-not-echo"


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Iterator[SQLiteStore]:
    """A fresh database the page reads, with the services cache cleared around the test."""
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("SCANSCRIBE_STORE", raising=False)
    ui._services.clear()
    store = SQLiteStore(db_path)
    yield store
    store.close()
    ui._services.clear()


@pytest.fixture
def two_scans(app_env: SQLiteStore) -> tuple[str, str]:
    before = import_bytes(app_env, (FIXTURES / "netns_before.xml").read_bytes(), filename="b.xml")
    after = import_bytes(app_env, (FIXTURES / "netns_after.xml").read_bytes(), filename="a.xml")
    return before.id, after.id


def page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=30).run()


def ports_table(at: AppTest) -> pd.DataFrame:
    [df] = [d.value for d in at.dataframe if {"port", "risk_reason"} <= set(d.value.columns)]
    return df


def hosts_table(at: AppTest) -> pd.DataFrame:
    [df] = [d.value for d in at.dataframe if {"os", "risk_reason"} <= set(d.value.columns)]
    return df


def picks(at: AppTest) -> list[str]:
    """The report ids the report picker offers, in order."""
    return [label.rsplit(" · ", 1)[-1] for label in at.selectbox(key="report_pick").options]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def deferred(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], Any]]:
    """The callables download buttons register, by file id: what a click would run."""
    seen: dict[str, Callable[[], Any]] = {}
    original = MediaFileManager.add_deferred

    def record(self: MediaFileManager, data_callable: Callable[[], Any], *a: Any, **kw: Any) -> str:
        file_id = original(self, data_callable, *a, **kw)
        seen[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return seen


def download(at: AppTest, key: str, deferred: dict[str, Callable[[], Any]]) -> str:
    """What the browser would get from a download button: its callable, run as a click runs it."""
    button = at.download_button(key=key)
    data = deferred[button.proto.deferred_file_id]()
    return data.decode() if isinstance(data, bytes) else str(data)


def test_empty_store_says_what_to_do(app_env: SQLiteStore) -> None:
    at = page()
    assert not at.exception
    assert "import an nmap XML file" in at.info[0].value


def test_pick_a_report_and_filter(two_scans: tuple[str, str]) -> None:
    before, after = two_scans
    at = page()
    assert not at.exception, at.exception
    assert at.selectbox(key="report_pick").value == after  # newest first
    assert metrics(at)["Hosts up"] == "2 / 3"
    assert metrics(at)["Open ports"] == "6"
    # The host nmap found down is left out until the toggle shows it.
    assert set(hosts_table(at)["address"]) == {"10.231.7.2", "10.231.7.3"}
    at.toggle(key="filter_down").set_value(True).run()
    hosts = hosts_table(at)
    assert set(hosts["address"]) == {"10.231.7.2", "10.231.7.3", "10.231.7.4"}
    top = hosts.set_index("address").loc["10.231.7.2"]
    assert top["risk"] == "critical" and top["risk_reason"]

    at.multiselect(key="filter_service").select("redis").run()
    rows = ports_table(at).set_index("address")
    assert list(rows["port"]) == [6379, 6379]
    assert rows.loc["10.231.7.2", "risk"] == "critical"
    assert rows.loc["10.231.7.2", "risk_reason"].startswith("Redis exposed")
    assert (rows.loc["10.231.7.3", "state"], rows.loc["10.231.7.3", "risk"]) == ("closed", "info")

    at.multiselect(key="filter_service").unselect("redis")
    at.text_input(key="filter_host").input("10.231.7.3")
    at.multiselect(key="filter_state").select("closed").run()
    rows = ports_table(at)
    assert len(rows) == 10 and set(rows["address"]) == {"10.231.7.3"}

    at.text_input(key="filter_host").input("")
    at.multiselect(key="filter_state").unselect("closed")
    at.text_input(key="filter_port").input("18021-18022")
    at.multiselect(key="filter_risk").select("critical").run()
    rows = ports_table(at)
    assert list(rows["port"]) == [18021]

    at.text_input(key="filter_port").input("22 --script=x").run()
    assert any("Port filter ignored" in w.value for w in at.warning)

    at.selectbox(key="report_pick").select(before).run()
    assert metrics(at)["Hosts up"] == "1 / 3"


def test_search_and_filter_narrow_the_history(
    two_scans: tuple[str, str], app_env: SQLiteStore
) -> None:
    before, after = two_scans
    cut = import_bytes(app_env, (FIXTURES / "netns_truncated.xml").read_bytes(), filename="c.xml")
    at = page()
    # Newest scan first; the cut-short file and the later scan ran at the same second.
    assert set(picks(at)[:2]) == {cut.id, after} and picks(at)[2] == before
    at.text_input(key="report_search").input("b.xml").run()
    assert picks(at) == [before]
    at.text_input(key="report_search").input("")
    at.selectbox(key="report_kind").select("incomplete").run()
    assert picks(at) == [cut.id]
    assert any("the file stops after host 2" in w.value for w in at.warning)
    at.selectbox(key="report_kind").select("scans").run()
    assert any("No report matches" in w.value for w in at.warning)


def test_diff_defaults_to_the_previous_scan_of_the_same_targets(two_scans: tuple[str, str]) -> None:
    before, after = two_scans
    at = page()
    assert at.selectbox(key="diff_old").value == before
    assert at.selectbox(key="diff_new").value == after
    m = metrics(at)
    assert (m["New hosts"], m["Gone hosts"], m["Opened ports"], m["Closed ports"]) == (
        "1",
        "0",
        "1",
        "1",
    )
    assert m["Changed services"] == "1"
    changed = [
        d.value for d in at.dataframe if "before" in d.value.columns and "after" in d.value.columns
    ]
    assert any("OpenSSH 9.2p1" in str(df["after"].tolist()) for df in changed)

    at.selectbox(key="diff_old").select(after)
    at.selectbox(key="diff_new").select(before).run()
    m = metrics(at)
    assert (m["New hosts"], m["Gone hosts"], m["Opened ports"], m["Closed ports"]) == (
        "0",
        "1",
        "1",
        "1",
    )


def save_summary(store: SQLiteStore, summary_id: str, report_id: str, text: str) -> None:
    """A finished executive summary of ``report_id``, as the Summarize page saves one."""
    store.save_summary(
        Summary(
            id=summary_id,
            report_id=report_id,
            model="mistral:7b",
            audience="executive",
            text=text,
            status="complete",
            created_at=1.0,
        )
    )


def test_downloads_hold_the_report_and_its_summaries(
    two_scans: tuple[str, str], app_env: SQLiteStore, deferred: dict[str, Callable[[], Any]]
) -> None:
    _, after = two_scans
    save_summary(app_env, "sum-1", after, "Close Redis. <script>alert(1)</script>")
    at = page()
    # The saved summary is listed with the report, escaped: its markup shows as text.
    assert any("Close Redis. \\<script\\>alert(1)\\</script\\>" in m.value for m in at.markdown)
    ports_csv = download(at, "dl_ports_csv", deferred)
    assert ports_csv.splitlines()[0].startswith("address,port,protocol,state")
    assert len(ports_csv.splitlines()) == 21
    assert "10.231.7.3" in download(at, "dl_hosts_csv", deferred)
    data = json.loads(download(at, "dl_json", deferred))
    assert data["id"] == after and data["summaries"][0]["text"].startswith("Close Redis.")
    html = download(at, "dl_html", deferred)
    assert "Close Redis. &lt;script&gt;" in html and "<script>" not in html
    assert "Close Redis" in download(at, "dl_md", deferred)


def test_scan_data_is_shown_as_text(app_env: SQLiteStore) -> None:
    import_bytes(app_env, (FIXTURES / "loopback_sV_scripts.xml").read_bytes(), filename="s.xml")
    at = page()
    codes = "\n".join(c.value for c in at.code)
    assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in codes
    assert "javascript:alert(document.cookie)" in codes
    markdown = "\n".join(m.value for m in at.markdown)
    assert "<script>" not in markdown and "](http" not in markdown


def test_timed_out_hosts_are_called_out(app_env: SQLiteStore) -> None:
    import_bytes(app_env, (FIXTURES / "timedout.xml").read_bytes(), filename="t.xml")
    at = page()
    assert metrics(at)["Hosts timed out"] == "2"
    assert any("timed out" in w.value and "unknown" in w.value for w in at.warning)
    assert set(hosts_table(at)["status"]) == {"timed out"}


def test_import_stores_good_files_and_refuses_hostile_ones(app_env: SQLiteStore) -> None:
    at = page()
    evil = f'<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY x "{SECRET}">]><nmaprun>&x;</nmaprun>'
    at.file_uploader(key="import_files").set_value(
        [
            ("evil.xml", evil.encode(), "text/xml"),
            ("good.xml", (FIXTURES / "loopback_sT.xml").read_bytes(), "text/xml"),
            ("cut.xml", (FIXTURES / "netns_truncated.xml").read_bytes(), "text/xml"),
        ]
    ).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "evil.xml" in errors[0] and "hostile" in errors[0]
    assert SECRET not in "\n".join(errors)
    assert any("good.xml" in s.value for s in at.success)
    assert any("cut.xml" in w.value and "incomplete" in w.value for w in at.warning)
    assert len(app_env.list_reports()) == 2
    at.run()  # a rerun does not import the same uploads twice
    assert len(app_env.list_reports()) == 2


def test_delete_needs_confirmation(two_scans: tuple[str, str], app_env: SQLiteStore) -> None:
    before, _ = two_scans
    at = page()
    at.button(key="delete_report").click().run()
    assert len(app_env.list_reports()) == 2  # asked, not done
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key="delete_confirm").click().run()
    assert not at.exception, at.exception
    assert [r.id for r in app_env.list_reports()] == [before]
    assert at.selectbox(key="report_pick").value == before


def chart_data(at: AppTest) -> list[pd.DataFrame]:
    """The data behind every chart on the page, decoded as the browser would get it."""
    import pyarrow as pa

    def walk(node: Any) -> Iterator[Any]:
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    return [
        pa.ipc.open_stream(ds.data.data).read_all().to_pandas()
        for node in walk(at._tree)
        if node.type == "vega_lite_chart"
        for ds in node.proto.datasets
    ]


INVENTED = "Close Redis on 10.231.7.2 port 6379 now. Also patch CVE-2099-0001 on 10.231.7.99."


def test_a_saved_summary_shows_its_fact_check_on_the_reports_page_and_in_exports(
    two_scans: tuple[str, str], app_env: SQLiteStore, deferred: dict[str, Callable[[], Any]]
) -> None:
    _, after = two_scans
    save_summary(app_env, "sum-made-up", after, INVENTED)
    at = page()
    assert not at.exception, at.exception
    shown = "\n".join(m.value for m in at.markdown)
    # The invented CVE and host are marked in the text; the real host and port are not.
    assert ":red-background[**CVE-2099-0001**]" in shown
    assert ":red-background[**10.231.7.99**]" in shown
    assert "Close Redis on 10.231.7.2 port 6379 now." in shown
    # The box lists what is not in the scan data.
    assert any("2 claim(s) are not in the scan data" in w.value for w in at.warning)
    [box] = [d.value for d in at.dataframe if "check" in d.value.columns]
    assert set(zip(box["kind"], box["value"], strict=True)) == {
        ("cve", "CVE-2099-0001"),
        ("host", "10.231.7.99"),
    }
    assert set(box["check"]) == {"not in the scan data — verify"}
    md = download(at, "dl_md", deferred)
    assert "**⚠ CVE-2099-0001**" in md and "**⚠ 10.231.7.99**" in md
    assert "- host 10.231.7.99: not in the scan data — verify" in md
    html = download(at, "dl_html", deferred)
    assert '<mark title="not in the scan data — verify">⚠ CVE-2099-0001</mark>' in html
    assert "<li>host 10.231.7.99: not in the scan data — verify</li>" in html
