"""The Summarize page, driven through AppTest against the Ollama test double."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from auth.users import add_user, edit_users
from scanner.models import Host, Port, Report, Script
from store.records import Summary
from store.sqlite import SQLiteStore
from tests.ollama_double import ModelScript, OllamaDouble
from tests.rendered import shown

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "summarize.py")

TRUE_AND_FALSE = (
    "Host 10.0.0.5 exposes Telnet on 23/tcp and a web server on port 80 that is affected by "
    "CVE-2021-41773. The database server 10.0.0.99 has port 3306 open, see CVE-2099-0001. "
    "Details: [click](https://evil.example) <img src=x> www.evil.example"
)


def _report(rid: str = "r1", created: float | None = None) -> Report:
    return Report(
        id=rid,
        targets=("10.0.0.0/24",),
        profile="quick",
        created_at=created or time.time(),
        hosts=(
            Host(
                "10.0.0.5",
                ports=(
                    Port(23, "tcp", "open", service="telnet"),
                    Port(
                        80,
                        "tcp",
                        "open",
                        service="http",
                        scripts=(Script("http-vuln-cve2021-41773", "VULNERABLE: CVE-2021-41773"),),
                    ),
                ),
            ),
        ),
    )


@pytest.fixture
def page_env(
    monkeypatch: pytest.MonkeyPatch, db_path: Path, ollama_double: OllamaDouble
) -> Iterator[SQLiteStore]:
    """The page pointed at a fresh database holding one report and at the Ollama double."""
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", ollama_double.url)
    monkeypatch.setenv("SCANSCRIBE_OLLAMA_TIMEOUT", "3")
    monkeypatch.delenv("SCANSCRIBE_STORE", raising=False)
    store = SQLiteStore(db_path)
    store.save_report(_report())
    ui._services.clear()
    yield store
    ui._services.clear()
    store.close()


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=30).run()


def _all_text(at: AppTest) -> str:
    parts = [str(e.value) for e in at.markdown] + [str(e.value) for e in at.caption]
    for kind in ("error", "warning", "info", "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def test_summary_streams_to_completion_with_metrics_and_fact_check(
    page_env: SQLiteStore, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(
        answer=TRUE_AND_FALSE, thinking="First I list the hosts"
    )
    at = _page()
    assert at.selectbox(key="sum_model").value == "llama3.2:latest"
    at.radio(key="sum_audience").set_value("technical")
    at.button(key="sum_go").click().run()
    assert not at.exception, at.exception
    text = _all_text(at)
    assert "Complete." in text
    # Metrics from the final chunk and the app's own timing.
    labels = {m.label: m.value for m in at.metric}
    assert labels["Output tokens"] != "—" and labels["Time to first token"].endswith(" s")
    # Unsupported claims listed and highlighted; the true ones are not.
    flagged = next(d.value for d in at.dataframe if "check" in d.value.columns)
    assert sorted(flagged["value"]) == [
        "10.0.0.99",
        "3306",
        "CVE-2099-0001",
        "evil.example",  # a link's host is a host name like any other
        "www.evil.example",
    ]
    assert set(flagged["check"]) == {"not in the scan data — verify"}
    shown = "\n".join(m.value for m in at.markdown if "exposes" in m.value)
    assert ":red-background[**10.0.0.99**]" in shown
    assert ":red-background[**CVE-2099-0001**]" in shown
    assert "CVE-2021-41773**]" not in shown and "10.0.0.5**]" not in shown
    # Untrusted output cannot become a link, an image or HTML.
    assert re.search(r"(?<!\\)\]\(", shown) is None, shown  # no live [text](url)
    assert re.search(r"(?<!\\)<img", shown) is None and "\\[click\\]" in shown
    assert "https\u200b\\://" in shown and "www\u200b\\.evil" in shown
    # Saved with its fact check, listed among the report's summaries.
    saved = page_env.list_summaries("r1")
    assert len(saved) == 1 and saved[0].status == "complete"
    assert saved[0].text == TRUE_AND_FALSE and saved[0].audience == "technical"
    assert {c["value"] for c in saved[0].fact_check["unsupported"]} == {
        "10.0.0.99",
        "3306",
        "CVE-2099-0001",
        "evil.example",
        "www.evil.example",
    }
    assert at.dataframe(key="sum_saved").value["status"].tolist() == ["complete"]
    # Reasoning is shown apart, collapsed, never inside the summary text.
    reasoning = [e for e in at.expander if "reasoning" in e.label]
    assert len(reasoning) == 1
    assert reasoning[0].text[0].value.startswith("First I list the hosts")
    assert "First I list" not in shown


def test_a_saved_summary_can_be_reopened(
    page_env: SQLiteStore, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(answer="Telnet on 10.0.0.5 port 23.")
    at = _page()
    at.button(key="sum_go").click().run()
    saved_id = page_env.list_summaries("r1")[0].id
    fresh = _page()  # a new session: nothing in session state
    assert not [m for m in fresh.markdown if "Telnet" in m.value]
    fresh.selectbox(key="sum_saved_pick").set_value(saved_id).run()
    assert any("Telnet on 10.0.0.5 port 23." in m.value for m in fresh.markdown)
    assert "all 2 host, port and CVE claims are in the scan data" in " ".join(
        s.value for s in fresh.success
    )


def test_mid_stream_failure_keeps_partial_text_marked_incomplete_and_offers_retry(
    page_env: SQLiteStore, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(
        answer="Host 10.0.0.5 has telnet open and it should be closed soon", error_after=4
    )
    at = _page()
    at.button(key="sum_go").click().run()
    assert not at.exception, at.exception
    errors = " ".join(shown(e.value) for e in at.error)
    assert "Incomplete" in errors and "stopped part-way" in errors
    assert any("Host 10.0.0.5 has" in m.value for m in at.markdown)
    saved = page_env.list_summaries("r1")[0]
    assert saved.status == "failed" and saved.text == "Host 10.0.0.5 has telnet"
    # Retry runs again; with the model fixed it completes.
    ollama_double.models["llama3.2:latest"] = ModelScript(answer="Host 10.0.0.5 is fine.")
    at.button(key="sum_retry").click().run()
    assert "Complete." in _all_text(at)
    assert [s.status for s in page_env.list_summaries("r1")] == ["complete", "failed"]


def test_ollama_down_says_how_to_start_it(
    page_env: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    ui._services.clear()
    at = _page()
    assert not at.exception
    assert "ollama serve" in " ".join(e.value for e in at.error)
    assert at.button(key="sum_go").disabled


def test_no_model_installed_says_how_to_pull_one(
    page_env: SQLiteStore, ollama_double: OllamaDouble
) -> None:
    ollama_double.models.clear()
    at = _page()
    assert "ollama pull" in " ".join(w.value for w in at.warning)
    assert at.button(key="sum_go").disabled


def test_a_stalled_model_ends_in_a_timeout_message_with_the_fix(
    page_env: SQLiteStore, ollama_double: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCANSCRIBE_OLLAMA_TIMEOUT", "1")
    ui._services.clear()
    ollama_double.models["llama3.2:latest"] = ModelScript(
        chunks=["Partial ", "rest"], stall_after=1
    )
    at = _page()
    at.button(key="sum_go").click().run()
    errors = " ".join(shown(e.value) for e in at.error)
    assert "sent nothing for 1 s" in errors and "SCANSCRIBE_OLLAMA_TIMEOUT" in errors
    assert any("Partial" in m.value for m in at.markdown)
    assert page_env.list_summaries("r1")[0].status == "failed"


def test_a_model_removed_before_the_click_says_which_pull_to_run(
    page_env: SQLiteStore, ollama_double: OllamaDouble
) -> None:
    at = _page()
    ollama_double.models.clear()
    at.button(key="sum_go").click().run()
    assert "`ollama pull llama3.2:latest`" in " ".join(e.value for e in at.error)
    assert at.button(key="sum_retry") is not None
    assert page_env.list_summaries("r1") == []


def test_the_summary_records_who_asked_for_it(
    page_env: SQLiteStore,
    ollama_double: OllamaDouble,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    users = tmp_path / "users.toml"
    edit_users(users, lambda u: add_user(u, "ana", "analyst", "open sesame 123"))
    monkeypatch.setenv("SCANSCRIBE_USERS", str(users))
    monkeypatch.setenv("SCANSCRIBE_USER", "service-account")
    ui._services.clear()
    ollama_double.models["llama3.2:latest"] = ModelScript(answer="Host 10.0.0.5 is up.")
    at = AppTest.from_file(PAGE, default_timeout=30)
    # Logged in as "ana" through the login endpoint, which created this session.
    at.session_state["_auth_cookie"] = ui._services().sessions.create("ana", "password")
    at.run()
    at.button(key="sum_go").click().run()
    assert not at.exception, at.exception
    (saved,) = page_env.list_summaries("r1")
    assert saved.owner == "ana"


DAY = 86_400.0


def _scan(rid: str, targets: tuple[str, ...], started: float, **kw: object) -> Report:
    """A report of ``targets`` whose scan ran at ``started``."""
    base = _report(rid, created=kw.pop("created", started))  # type: ignore[arg-type]
    return replace(base, targets=targets, started_at=started, **kw)  # type: ignore[arg-type]


def test_changing_the_report_resets_the_earlier_report(
    page_env: SQLiteStore, ollama_double: OllamaDouble
) -> None:
    now = time.time()
    ollama_double.models["llama3.2:latest"] = ModelScript(answer="Port 23 is open.")
    page_env.save_report(_scan("r-web-old", ("10.0.0.0/24",), now - 7 * DAY))
    page_env.save_report(_scan("r-lab", ("192.0.2.0/24",), now - DAY))
    # A 2016 scan of the lab imported just now: newest import, oldest scan.
    page_env.save_report(
        _scan("r-lab-2016", ("192.0.2.0/24",), 1_460_000_000.0, created=now, profile="")
    )
    page_env.save_report(_scan("r-lab-later", ("192.0.2.7",), now - 3600))
    at = _page()
    at.radio(key="sum_mode").set_value("diff").run()
    assert at.selectbox(key="sum_report").value == "r1"
    assert at.selectbox(key="sum_base").value == "r-web-old"
    assert at.selectbox(key="sum_base").options == [
        at.selectbox(key="sum_base").format_func("r-web-old")
    ]

    at.selectbox(key="sum_report").set_value("r-lab").run()
    assert not at.exception
    base = at.selectbox(key="sum_base")
    # Only older scans of overlapping targets: not the web scan, not the later lab scan.
    assert base.value == "r-lab-2016"
    assert [o.rsplit(" · ", 1)[-1] for o in base.options] == ["r-lab-2016"]
    warning = "\n".join(w.value for w in at.warning)
    assert "the profiles differ" in warning

    at.button(key="sum_go").click().run()
    assert not at.exception
    (saved,) = page_env.list_summaries("r-lab")
    assert (saved.report_id, saved.base_report_id) == ("r-lab", "r-lab-2016")
    # The summary names both reports with their targets and scan times.
    assert saved.compares.startswith(
        "changes from r-lab-2016 (192.0.2.0/24; scanned 2016-04-07 03:33 UTC) to r-lab "
        "(192.0.2.0/24; scanned "
    )
    captions = "\n".join(c.value for c in at.caption)
    assert "changes from r-lab-2016 (192.0.2.0/24; scanned 2016-04-07 03\\:33 UTC)" in captions
    prompt = ollama_double.chat_requests()[-1].body["messages"][1]["content"]
    assert "earlier scan: id=r-lab-2016" in prompt and "later scan: id=r-lab" in prompt
    assert "scanned=2016-04-07" in prompt
    assert "pair: WARNING" in prompt and "the profiles differ" in prompt

    # The oldest report has nothing earlier: no pair, and Summarize waits for one.
    at.selectbox(key="sum_report").set_value("r-lab-2016").run()
    assert "nothing to compare" in "\n".join(i.value for i in at.info)
    assert at.button(key="sum_go").disabled


def test_a_summary_written_from_condensed_data_says_what_was_left_out(
    page_env: SQLiteStore,
) -> None:
    omitted = {"hosts": 37, "open_ports": 62, "script_outputs": 115}
    page_env.save_summary(
        Summary(
            id="sum-digest", report_id="r1", model="llama3.2:latest", audience="executive",
            text="Host 10.0.0.5 exposes SSH.", status="complete", created_at=time.time(),
            options={"omitted": omitted},
        )
    )  # fmt: skip
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["summary"] = "sum-digest"
    at.run()
    assert not at.exception
    shown = _all_text(at)
    assert "37 host(s) with 62 open port(s) were not named one by one" in shown
    assert "115 script output(s) were left out" in shown
