"""The Compare models page, driven through AppTest against the Ollama double."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import ui
from llm.compare import set_verdict
from store.records import Comparison
from store.sqlite import SQLiteStore
from tests import compare_support as cs
from tests.ollama_double import ModelScript, OllamaDouble
from tests.rendered import shown

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "compare.py")

HOSTILE = (
    "Host 127.0.0.1: <script>alert(1)</script> [click here](javascript:alert(1)) "
    "![beacon](http://127.0.0.9/b.png) <img src=x onerror=alert(1)> www.evil.example"
)


@pytest.fixture
def double() -> Iterator[OllamaDouble]:
    """Three models: one grounded, one inventing facts (and slower), one writing markup."""
    d = cs.double(
        fast__latest=ModelScript(answer=cs.GROUNDED, chunk_delay_s=0.005),
        slow__latest=ModelScript(answer=cs.INVENTED, first_token_delay_s=0.4, chunk_delay_s=0.01),
        markup__latest=ModelScript(answer=HOSTILE),
    )
    yield d
    d.stop()


@pytest.fixture
def store(
    monkeypatch: pytest.MonkeyPatch, db_path: Path, double: OllamaDouble
) -> Iterator[SQLiteStore]:
    """The page pointed at a fresh database with the two-host report and at the double."""
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", double.url)
    monkeypatch.setenv("SCANSCRIBE_OLLAMA_TIMEOUT", "5")
    for name in ("SCANSCRIBE_STORE", "OLLAMA_MAX_LOADED_MODELS", "OLLAMA_NUM_PARALLEL"):
        monkeypatch.delenv(name, raising=False)
    s = SQLiteStore(db_path)
    s.save_report(cs.report())
    ui._services.clear()
    yield s
    ui._services.clear()
    s.close()


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=30).run()


def _texts(at: AppTest) -> str:
    parts = [str(e.value) for e in at.markdown] + [str(e.value) for e in at.caption]
    for kind in ("error", "warning", "info", "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


# st.dataframe keeps its key only when rows are selectable, so tables are found by a column.
TABLES = {
    "metrics": "time to first token (s)",
    "factcheck": "not in the scan",
    "claims": "claim",
    "coverage": "hosts left out",
    "leaderboard": "wins",
}


def _frame(at: AppTest, table: str) -> list[dict[str, Any]]:
    frame = next(d.value for d in at.dataframe if TABLES[table] in d.value.columns)
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _compare(at: AppTest, *models: str) -> AppTest:
    at.multiselect(key="cmp_models").set_value(list(models)).run()
    assert not at.button(key="cmp_go").disabled
    return at.button(key="cmp_go").click().run()


def test_compare_two_models_mark_a_winner_and_it_is_saved(store: SQLiteStore) -> None:
    at = _page()
    assert not at.exception
    assert at.selectbox(key="cmp_report").value == "rep-cmp"
    assert at.button(key="cmp_go").disabled  # no models chosen yet
    at = _compare(at, "fast:latest", "slow:latest")
    assert not at.exception, at.exception
    (comp,) = store.list_comparisons()
    assert [r["status"] for r in comp.results] == ["complete", "complete"]
    # Both columns hold their whole answer, side by side.
    keys = [str(getattr(c, "key", "")) for c in at.get("flex_container")]
    assert sorted(k for k in keys if k.startswith("cmp_answer_")) == [
        "cmp_answer_0",
        "cmp_answer_1",
    ]
    text = _texts(at)
    assert "Host 127.0.0.2 runs SSH" in text
    assert "10.9.9.9" in text
    metrics = _frame(at, "metrics")
    assert [m["model"] for m in metrics] == ["fast:latest", "slow:latest"]
    # Speed, first-token wait and unsupported claims are also drawn, one bar per model.
    assert len(at.get("vega_lite_chart")) == 3
    assert all(m["status"] == "complete" and m["output tokens"] for m in metrics)
    checks = {r["model"]: r for r in _frame(at, "factcheck")}
    assert checks["fast:latest"]["not in the scan"] == 0
    assert checks["slow:latest"]["not in the scan"] == 3
    claims = _frame(at, "claims")
    assert {
        "model": "slow:latest",
        "kind": "cve",
        "claim": "CVE-2021-44228",
        "check": "not in the scan — verify",
    } in claims
    cover = {r["model"]: r for r in _frame(at, "coverage")}
    assert cover["fast:latest"]["hosts mentioned"] == "2/2"
    assert cover["slow:latest"]["hosts left out"] == "127.0.0.2"
    assert "23/tcp telnet (high)" in str(cover["slow:latest"]["high-risk ports left out"])

    assert at.button(key="cmp_save").disabled  # no verdict chosen yet
    at.radio(key="cmp_winner").set_value("fast:latest").run()
    at.text_area(key="cmp_note").input("grounded, names every host")
    at.button(key="cmp_save").click().run()
    assert not at.exception
    assert any("Saved" in s.value for s in at.success)
    saved = store.get_comparison(comp.id)
    assert (saved.winner, saved.note) == ("fast:latest", "grounded, names every host")
    board = {r["model"]: r for r in _frame(at, "leaderboard")}
    assert (board["fast:latest"]["wins"], board["slow:latest"]["losses"]) == (1, 1)


def test_a_saved_comparison_reopens_with_its_verdict(store: SQLiteStore) -> None:
    at = _compare(_page(), "fast:latest", "slow:latest")
    (comp,) = store.list_comparisons()
    set_verdict(store, comp.id, "tie", "both fine")
    other = Comparison(
        id="cmp-older",
        report_id="rep-cmp",
        audience="technical",
        models=("a:1", "b:2"),
        results=(
            {"model": "a:1", "status": "complete", "text": "older answer A", "metrics": {}},
            {"model": "b:2", "status": "stopped", "text": "older answer B", "metrics": {}},
        ),
        winner="b:2",
        note="kept",
        created_at=1.0,
    )
    store.save_comparison(other)
    at = _page()
    assert at.selectbox(key="cmp_saved").options[-1].startswith("1970")
    at.selectbox(key="cmp_saved").select("cmp-older").run()
    assert not at.exception
    text = _texts(at)
    assert "older answer A" in text and "older answer B" in text
    # No metrics were kept, the complete answer made no claim and the stopped one is not
    # scored: words instead of charts of nothing.
    assert len(at.get("vega_lite_chart")) == 0
    assert "No claim outside the scan" in text and "Not measured: b:2." in shown(text)
    assert at.radio(key="cmp_winner").value == "b:2"
    assert at.text_area(key="cmp_note").value == "kept"
    at.selectbox(key="cmp_saved").select(comp.id).run()
    assert at.radio(key="cmp_winner").value == "tie"
    assert at.text_area(key="cmp_note").value == "both fine"
    assert cs.GROUNDED.split(" on ")[0] in _texts(at)


def test_llm_output_is_never_rendered_as_markup(store: SQLiteStore) -> None:
    at = _compare(_page(), "markup:latest", "fast:latest")
    assert not at.exception
    shown = [m.value for m in at.markdown if "alert" in m.value]
    assert shown, "the hostile answer should be shown as text"
    for value in shown:
        # Every angle bracket, link bracket and scheme colon arrives escaped, so markdown shows
        # them as characters: no HTML element, no link, no image.
        assert re.search(r"(?<!\\)[<>]", value) is None
        assert re.search(r"(?<!\\)\]\(", value) is None
        assert re.search(r"(?i)(javascript|https?):", value) is None


def test_capacity_problem_is_explained_and_needs_a_confirmation(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "1")
    at = _page()
    at.multiselect(key="cmp_models").set_value(["fast:latest", "slow:latest"]).run()
    assert at.number_input(key="cmp_max_loaded").value == 1
    warning = "\n".join(w.value for w in at.warning)
    assert "cannot serve these models at the same time" in warning
    assert "OLLAMA\\_MAX\\_LOADED\\_MODELS=1" in warning or "OLLAMA_MAX_LOADED_MODELS=1" in warning
    assert at.button(key="cmp_go").disabled
    at.checkbox(key="cmp_anyway").check().run()
    assert not at.button(key="cmp_go").disabled
    at.number_input(key="cmp_max_loaded").set_value(2).run()
    assert not at.warning and not at.button(key="cmp_go").disabled


def test_ollama_down_is_said_with_the_fix(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    ui._services.clear()
    at = _page()
    assert not at.exception
    assert "ollama serve" in _texts(at)
    assert at.button(key="cmp_go").disabled


def test_a_diff_can_be_compared(store: SQLiteStore) -> None:
    older = cs.report("rep-old")
    store.save_report(
        older.__class__(id="rep-old", targets=older.targets, created_at=1.0, hosts=older.hosts[:1])
    )
    at = _page()
    at.radio(key="cmp_mode").set_value("diff").run()
    assert at.selectbox(key="cmp_base").value == "rep-old"
    at = _compare(at, "fast:latest", "slow:latest")
    assert not at.exception
    (comp,) = store.list_comparisons()
    assert (comp.report_id, comp.base_report_id) == ("rep-cmp", "rep-old")
    assert "changes from rep-old to rep-cmp" in _texts(at)


def test_a_comparison_cut_short_by_a_dead_process_says_so(store: SQLiteStore) -> None:
    store.save_comparison(
        Comparison(
            id="cmp-cut",
            report_id="rep-cmp",
            audience="executive",
            models=("a:1", "b:2"),
            results=(
                {"model": "a:1", "status": "complete", "text": "whole", "metrics": {}},
                {"model": "b:2", "status": "streaming", "text": "half of it", "metrics": {}},
            ),
        )
    )
    at = _page()
    at.selectbox(key="cmp_saved").select("cmp-cut").run()
    assert not at.exception
    assert "interrupted — the program stopped while this answer streamed" in _texts(at)
    assert "half of it" in _texts(at)
