"""The leaderboard adds up: verdicts become wins, ties and losses; averages are per answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from llm.compare_tables import leaderboard_rows, metrics_rows
from llm.leaderboard import leaderboard, unsupported_count
from store.records import Comparison
from store.sqlite import SQLiteStore


def _answer(
    model: str, tps: float | None, ttft: float | None, bad: int, status: str = "complete"
) -> dict[str, Any]:
    return {
        "model": model,
        "status": status,
        "text": "…",
        "metrics": {"tokens_per_s": tps, "ttft_s": ttft},
        "unsupported_claims": [{"kind": "host", "value": f"10.0.0.{i}"} for i in range(bad)],
    }


def _comparison(
    cid: str, winner: str | None, *answers: dict[str, Any], created_at: float = 1.0
) -> Comparison:
    return Comparison(
        id=cid,
        report_id="rep",
        audience="executive",
        models=tuple(a["model"] for a in answers),
        results=answers,
        winner=winner,
        created_at=created_at,
    )


SAVED = [
    _comparison("c1", "llama", _answer("llama", 40.0, 0.5, 0), _answer("mistral", 20.0, 1.0, 2)),
    _comparison("c2", "mistral", _answer("llama", 60.0, 0.3, 1), _answer("mistral", 30.0, 0.9, 0)),
    _comparison(
        "c3",
        "tie",
        _answer("llama", 50.0, 0.4, 0),
        _answer("mistral", 25.0, 1.1, 1),
        _answer("qwen", 80.0, 0.2, 3),
    ),
    _comparison("c4", "llama", _answer("llama", 45.0, 0.5, 2), _answer("qwen", 70.0, 0.3, 1)),
    # No verdict yet: counts as a comparison and in the averages, not in wins/ties/losses.
    _comparison("c5", None, _answer("qwen", 90.0, 0.1, 0), _answer("mistral", 22.0, 1.2, 4)),
    # A stopped answer says nothing about speed or grounding.
    _comparison(
        "c6",
        "qwen",
        _answer("qwen", 75.0, 0.2, 0),
        _answer("mistral", 1.0, 9.0, 9, status="stopped"),
    ),
]


@pytest.fixture
def saved(sqlite_store: SQLiteStore) -> list[Comparison]:
    """The crafted comparisons, written to and read back from a real SQLite store."""
    for i, comp in enumerate(SAVED):
        sqlite_store.save_comparison(replace(comp, created_at=float(i)))
    return sqlite_store.list_comparisons()


def test_wins_ties_and_losses_add_up(saved: list[Comparison]) -> None:
    board = {s.model: s for s in leaderboard(saved)}
    assert (board["llama"].wins, board["llama"].ties, board["llama"].losses) == (2, 1, 1)
    assert (board["mistral"].wins, board["mistral"].ties, board["mistral"].losses) == (1, 1, 2)
    assert (board["qwen"].wins, board["qwen"].ties, board["qwen"].losses) == (1, 1, 1)
    assert (board["llama"].comparisons, board["mistral"].comparisons) == (4, 5)
    assert board["qwen"].comparisons == 4
    # Every non-tie verdict is one win; each model's judged comparisons are its W + T + L.
    decided = sum(1 for c in SAVED if c.winner not in (None, "tie"))
    assert sum(s.wins for s in board.values()) == decided
    assert board["mistral"].judged == board["mistral"].comparisons - 1  # c5 has no verdict


def test_averages_are_per_complete_answer(saved: list[Comparison]) -> None:
    board = {s.model: s for s in leaderboard(saved)}
    assert board["llama"].avg_tokens_per_s == pytest.approx((40 + 60 + 50 + 45) / 4)
    assert board["llama"].avg_ttft_s == pytest.approx((0.5 + 0.3 + 0.4 + 0.5) / 4)
    assert board["llama"].avg_unsupported == pytest.approx(3 / 4)
    # mistral's stopped answer in c6 is left out of its averages.
    assert board["mistral"].avg_tokens_per_s == pytest.approx((20 + 30 + 25 + 22) / 4)
    assert board["mistral"].avg_unsupported == pytest.approx((2 + 0 + 1 + 4) / 4)
    assert board["qwen"].avg_ttft_s == pytest.approx((0.2 + 0.3 + 0.1 + 0.2) / 4)


def test_best_model_first(saved: list[Comparison]) -> None:
    assert [s.model for s in leaderboard(saved)] == ["llama", "qwen", "mistral"]


def test_empty_and_unknown_metrics() -> None:
    assert leaderboard([]) == []
    comp = _comparison("c", None, _answer("a", None, None, 0), _answer("b", 10.0, 1.0, 1))
    board = {s.model: s for s in leaderboard([comp])}
    assert board["a"].avg_tokens_per_s is None and board["a"].avg_ttft_s is None
    assert board["a"].avg_unsupported == 0.0
    assert (board["a"].wins, board["a"].ties, board["a"].losses) == (0, 0, 0)


def test_unsupported_count_reads_the_fact_check_when_the_list_is_missing() -> None:
    assert unsupported_count({"fact_check": {"unsupported": [{"kind": "cve", "value": "x"}]}}) == 1
    assert unsupported_count({"text": "no check"}) is None


def test_table_rows_round_and_leave_unknowns_empty(saved: list[Comparison]) -> None:
    rows = {r["model"]: r for r in leaderboard_rows(leaderboard(saved))}
    assert rows["llama"]["avg tokens/s"] == 48.8  # (40 + 60 + 50 + 45) / 4 = 48.75
    assert rows["llama"]["wins"] == 2
    comp = _comparison("c", None, _answer("a", None, True, 0), _answer("b", 12.345, 0.5, 1))
    metrics = {r["model"]: r for r in metrics_rows(comp)}
    assert metrics["a"]["tokens/s"] is None and metrics["a"]["time to first token (s)"] is None
    assert metrics["b"]["tokens/s"] == 12.3 and metrics["b"]["time to first token (s)"] == 0.5
