"""Reports, diffs and summaries by address; one report label; state from the store; progress."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import config
import ui
from config import PROJECT_ROOT as ROOT
from scanner.models import Host, Port, Report, ReportSummary
from scanner.profiles import PROFILES
from scanner.progress import overall, phase_words, phases
from store.records import Job, Summary
from store.sqlite import SQLiteStore
from widgets.scan_jobs import bar_value, progress_line

PAGES = ROOT / "pages"


def _report(
    rid: str, started: float, targets: tuple[str, ...] = ("10.0.0.0/29",), **kw: object
) -> Report:
    port = Port(22, "tcp", "open", service="ssh")
    return Report(
        id=rid,
        targets=targets,
        profile="quick",
        source="scan",
        created_at=started,
        started_at=started,
        hosts=(Host("10.0.0.1", ports=(port,)), Host("10.0.0.2", status="down")),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Iterator[SQLiteStore]:
    """A fresh database with an older and a newer scan of the same targets."""
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("SCANSCRIBE_STORE", raising=False)
    s = SQLiteStore(db_path)
    s.save_report(_report("rep-old", 1_700_000_000.0))
    s.save_report(_report("rep-new", 1_700_086_400.0))
    ui._services.clear()
    yield s
    ui._services.clear()
    s.close()


def _open(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=30)
    at.query_params.update(params)
    return at.run()


def _errors(at: AppTest) -> str:
    return re.sub(r"\\(.)", r"\1", "\n".join(str(e.value) for e in at.error))


# -- one label ----------------------------------------------------------------------------------
def test_a_report_label_names_source_time_targets_counts_and_the_whole_id() -> None:
    scan = ReportSummary.of(_report("rep-a", 1_700_000_000.0))
    label = ui.report_label(scan)
    assert label.startswith("quick · " + ui.when(1_700_000_000.0) + " · 10.0.0.0/29 · ")
    assert label.endswith(" · 1 up / 1 open · rep-a")
    assert re.search(r"\d\d:\d\d:\d\d", label) and " PM" not in label and " AM" not in label
    # An import is named by its file; two imports of the same scan differ by their ids.
    imported = replace(scan, profile="", source="import: lab-2016.xml", id="rep-b")
    twin = replace(imported, id="rep-c")
    assert ui.report_label(imported).startswith("lab-2016.xml · ")
    assert ui.report_label(imported) != ui.report_label(twin)
    # A long target list is cut between targets, says how many more, and keeps the id whole.
    many = replace(scan, targets=tuple(f"10.0.{i}.0/24" for i in range(40)), id="rep-" + "9" * 30)
    long_label = ui.report_label(many)
    assert long_label.endswith(" · rep-" + "9" * 30)
    more = int(re.search(r"\+(\d+) more", long_label).group(1))  # type: ignore[union-attr]
    assert long_label.count("/24") + more == 40


def test_every_report_picker_uses_the_one_label_and_searches_file_names(
    store: SQLiteStore,
) -> None:
    store.save_report(
        replace(_report("rep-imp", 1_600_000_000.0), profile="", source="import: edge.xml")
    )
    at = _open("reports.py")
    by_id = {r.id: r for r in store.list_reports()}
    picker = at.selectbox(key="report_pick")
    assert picker.options == [ui.report_label(by_id[i]) for i in ("rep-new", "rep-old", "rep-imp")]
    for key in ("diff_old", "diff_new"):
        assert set(at.selectbox(key=key).options) == set(picker.options)
    at.text_input(key="report_search").input("edge.xml").run()
    assert at.selectbox(key="report_pick").value == "rep-imp"


# -- addresses ----------------------------------------------------------------------------------
def test_a_report_address_opens_that_report_and_the_page_keeps_it_in_the_address(
    store: SQLiteStore,
) -> None:
    at = _open("reports.py", report="rep-old")
    assert not at.exception
    assert at.selectbox(key="report_pick").value == "rep-old"
    at.selectbox(key="report_pick").set_value("rep-new").run()
    assert at.query_params["report"] == "rep-new"


def test_a_diff_address_opens_the_diff_tab_with_both_reports(store: SQLiteStore) -> None:
    at = _open("reports.py", diff="rep-old..rep-new")
    assert not at.exception
    assert at.session_state["report_view"] == "Diff"
    assert at.selectbox(key="diff_old").value == "rep-old"
    assert at.selectbox(key="diff_new").value == "rep-new"
    assert at.query_params["diff"] == "rep-old..rep-new"


def test_an_unknown_id_in_the_address_says_so_and_shows_the_newest(store: SQLiteStore) -> None:
    at = _open("reports.py", report="rep-gone")
    assert "No report has the id 'rep-gone'" in _errors(at)
    assert at.selectbox(key="report_pick").value == "rep-new"
    at = _open("reports.py", diff="rep-old..nope")
    assert "No pair of reports has the id 'rep-old..nope'" in _errors(at)


def test_a_summary_address_opens_that_summary_with_its_pair(store: SQLiteStore) -> None:
    store.save_summary(
        Summary(
            id="sum-diff",
            report_id="rep-new",
            base_report_id="rep-old",
            model="m:1",
            audience="executive",
            text="Nothing changed on 10.0.0.1.",
            status="complete",
            created_at=1_700_090_000.0,
        )
    )
    at = _open("summarize.py", summary="sum-diff")
    assert not at.exception
    assert at.radio(key="sum_mode").value == "diff"
    assert at.selectbox(key="sum_report").value == "rep-new"
    assert at.selectbox(key="sum_base").value == "rep-old"
    assert at.selectbox(key="sum_saved_pick").value == "sum-diff"
    assert any("Nothing changed" in str(m.value) for m in at.markdown)
    assert at.query_params["summary"] == "sum-diff"
    assert "No summary has the id 'sum-x'" in _errors(_open("summarize.py", summary="sum-x"))


def test_a_report_address_preselects_summarize_and_compare(store: SQLiteStore) -> None:
    for page, prefix in (("summarize.py", "sum"), ("compare.py", "cmp")):
        at = _open(page, report="rep-old")
        assert not at.exception, page
        assert at.selectbox(key=f"{prefix}_report").value == "rep-old", page


# -- state from the store -------------------------------------------------------------------------
def test_results_of_your_scans_come_from_the_store_by_owner(store: SQLiteStore) -> None:
    me = config.load().user
    store.save_job(
        Job(
            "job-mine",
            ("10.0.0.0/29",),
            "quick",
            status="done",
            owner=me,
            report_id="rep-new",
            progress=100.0,
            created_at=2.0,
            finished_at=3.0,
        )
    )
    store.save_job(Job("job-theirs", ("10.0.0.9",), "udp", status="failed", owner="someone-else",
                       error="their scan failed", created_at=4.0, finished_at=5.0))  # fmt: skip
    at = _open("scan.py")  # a fresh session: nothing of this session's state to go on
    labels = [e.label for e in at.expander]
    assert any("10.0.0.0/29" in label and "done" in label for label in labels)
    assert not any("udp" in label for label in labels)
    assert "their scan failed" not in _errors(at)


def test_the_sidebar_says_a_scan_of_yours_is_running_on_every_page(store: SQLiteStore) -> None:
    me = config.load().user
    # Running on another machine that shares the store, so start-up recovery leaves it be.
    running = Job("job-run", ("10.0.0.1",), "quick", status="running", owner=me, created_at=1.0,
                  started_at=1.0, runner_machine="scanner-2")  # fmt: skip
    store.save_job(running)
    for page in ("reports.py", "overview.py", "summarize.py"):
        at = _open(page)
        assert any("Scan running" in str(m.value) for m in at.sidebar.markdown), page
    store.save_job(replace(running, owner="someone-else"))
    at = _open("reports.py")
    assert not any("Scan running" in str(m.value) for m in at.sidebar.markdown)


# -- progress -------------------------------------------------------------------------------------
def test_progress_names_the_phase_and_counts_across_phases() -> None:
    standard = PROFILES["standard"].args
    assert [p.words for p in phases(standard)] == [
        "Host discovery", "Port scan", "Service detection", "Script scan",
    ]  # fmt: skip
    assert phase_words("Service scan") == "Service detection"
    assert phase_words("NSE") == "Script scan"
    assert phase_words("SYN Stealth Scan") == "Port scan"
    half_ports = overall(standard, "Connect Scan", 50.0)
    done_ports = overall(standard, "Service scan", 0.0)
    assert half_ports is not None and done_ports is not None
    assert (half_ports.step, half_ports.steps) == (2, 4)
    assert 0 < half_ports.percent < done_ports.percent < 100
    assert overall(standard, "Script scan", 100.0).percent == pytest.approx(100.0)  # type: ignore[union-attr]
    # The quick profile has no service detection: the port scan is most of it.
    quick = overall(PROFILES["quick"].args, "Connect Scan", 100.0)
    assert quick is not None and quick.percent == pytest.approx(100.0)


def test_the_progress_line_says_phase_step_overall_and_time_taken() -> None:
    job = Job("j", ("10.0.0.1",), "standard", status="running", started_at=1000.0,
              task="Service scan", progress=40.0, eta_s=30.0)  # fmt: skip
    line = progress_line(job, now=1065.0)
    assert line == (
        "Step 3 of 4 · Service detection: 40 % , about 30.0 s left in this step · "
        f"overall {overall(PROFILES['standard'].args, 'Service scan', 40.0).percent:.0f} % · "  # type: ignore[union-attr]
        "running 1m 05s"
    ).replace(" % ,", " %,")
    assert bar_value(job) > 40  # the bar shows the whole scan, not the phase
    queued = replace(job, status="queued", task="")
    assert progress_line(queued, now=1065.0).startswith("Queued")
