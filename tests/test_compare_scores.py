"""Compare scores: no raw None in any table, bars ordered best first with their values, and an
answer cut short marked incomplete instead of scored as inventing nothing."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from streamlit.testing.v1 import AppTest

from llm.compare_tables import factcheck_rows
from store.records import Comparison
from store.sqlite import SQLiteStore
from tests import test_compare_page as cp
from tests.rendered import shown

# The page's fixtures: a database with the two-host report, and the Ollama double.
double, store = cp.double, cp.store

CLAIMS = {"supported": [{"kind": "host", "value": "127.0.0.1"}], "unsupported": []}


def result(
    model: str, status: str, tps: float | None, ttft: float | None, bad: int
) -> dict[str, Any]:
    invented = [{"kind": "cve", "value": f"CVE-2099-000{i}"} for i in range(bad)]
    metrics = {"tokens_per_s": tps, "ttft_s": ttft} if tps is not None else {}
    return {
        "model": model,
        "status": status,
        "text": f"answer of {model}",
        "metrics": metrics,
        "fact_check": {**CLAIMS, "unsupported": invented},
        "unsupported_claims": invented,
    }


COMP = Comparison(
    id="cmp-scores",
    report_id="rep-cmp",
    audience="technical",
    models=("alpha:1", "mid:1", "zeta:1", "quit:1"),
    results=(
        result("alpha:1", "complete", 5.0, 0.9, 2),
        result("mid:1", "complete", 20.0, 0.5, 1),
        result("zeta:1", "complete", 80.0, 0.1, 0),
        # Stopped before its first token: no speed, no claims; not a model that invents nothing.
        result("quit:1", "stopped", None, None, 0),
    ),
    created_at=1_700_000_000.0,
)


def opened(store: SQLiteStore) -> AppTest:
    store.save_comparison(COMP)
    at = cp._page()
    at.selectbox(key="cmp_saved").select(COMP.id).run()
    assert not at.exception, at.exception
    return at


def bar_charts(at: AppTest) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Each bar chart by its value format: its spec and its models in the order drawn."""
    out = {}
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        frame = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()
        y = spec["layer"][0]["encoding"]["y"]
        ordered = frame.sort_values("value", ascending=y["sort"]["order"] == "ascending")
        out[spec["layer"][1]["encoding"]["text"]["format"]] = (spec, list(ordered["model"]))
    return out


def test_an_incomplete_answer_is_not_scored_as_inventing_nothing() -> None:
    rows = {r["model"]: r for r in factcheck_rows(COMP)}
    assert rows["zeta:1"]["not in the scan"] == 0 and rows["zeta:1"]["answer"] == "complete"
    assert rows["quit:1"]["not in the scan"] is None and rows["quit:1"]["supported"] is None
    assert rows["quit:1"]["answer"] == "incomplete: stopped"


def test_bars_are_ordered_best_first_and_leave_out_what_was_not_measured(
    store: SQLiteStore,
) -> None:
    at = opened(store)
    charts = bar_charts(at)
    # Names sort alpha, mid, quit, zeta; the values put zeta first in every chart.
    assert charts[".1f"][1] == ["zeta:1", "mid:1", "alpha:1"]  # tokens/s, fastest first
    assert charts[".3f"][1] == ["zeta:1", "mid:1", "alpha:1"]  # first token, quickest first
    assert charts["d"][1] == ["zeta:1", "mid:1", "alpha:1"]  # invented claims, fewest first
    for spec, _ in charts.values():
        assert spec["layer"][1]["mark"]["type"] == "text"  # a value label on every bar
    text = shown("\n".join(c.value for c in at.caption))
    assert "Not measured: quit:1." in text
    assert "Not scored, the answer is incomplete: quit:1." in text


def test_no_table_shows_a_raw_none(store: SQLiteStore) -> None:
    at = opened(store)
    for frame in at.dataframe:
        # A missing cell is drawn as "None" in the browser whatever its format says.
        assert not frame.value.isna().any().any(), frame.value
        assert not (frame.value.astype(str) == "None").any().any(), frame.value
    [metrics] = [d.value for d in at.dataframe if "tokens/s" in d.value.columns]
    assert metrics.set_index("model").loc["quit:1", "tokens/s"] == "—"
    [board] = [d.value for d in at.dataframe if "wins" in d.value.columns]
    assert board.set_index("model").loc["quit:1", "avg unsupported claims"] == "—"
