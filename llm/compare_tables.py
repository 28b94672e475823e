"""The tables a comparison is shown with: plain rows (lists of dicts) that a page hands to a table.

Kept out of the page so that the numbers a person compares are built, and tested, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llm.leaderboard import Standing
from store.records import Comparison

Row = dict[str, Any]


def _num(value: Any, digits: int = 2) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(float(value), digits)


def metrics_rows(comp: Comparison) -> list[Row]:
    """One row per model: time to first token, speed, size, total time; load time apart."""
    rows = []
    for r in comp.results:
        m: Mapping[str, Any] = r.get("metrics") or {}
        rows.append(
            {
                "model": r["model"],
                "status": r["status"],
                "time to first token (s)": _num(m.get("ttft_s"), 3),
                "tokens/s": _num(m.get("tokens_per_s"), 1),
                "output tokens": _num(m.get("output_tokens"), 0),
                "total time (s)": _num(m.get("total_s")),
                "load time in run (s)": _num(m.get("load_s")),
                "warm-up load (s)": _num(m.get("warmup_load_s")),
            }
        )
    return rows


# Why an answer that did not finish is not scored, by its status.
INCOMPLETE = {
    "stopped": "incomplete: stopped",
    "failed": "incomplete: failed part-way",
    "streaming": "incomplete: interrupted",
}


def is_complete(result: Mapping[str, Any]) -> bool:
    """True when the answer ran to its end; only such an answer is scored."""
    return bool(result.get("status", "complete") == "complete")


def answer_state(result: Mapping[str, Any]) -> str:
    """``complete``, or why the answer is incomplete, in words."""
    status = str(result.get("status", "complete"))
    return "complete" if status == "complete" else INCOMPLETE.get(status, f"incomplete: {status}")


def factcheck_rows(comp: Comparison) -> list[Row]:
    """One row per model: how many claims the scan supports and how many it does not.

    An answer cut short is not scored (its counts are None): a model stopped before it wrote
    anything has invented nothing only because it said nothing. Its claims still appear in
    :func:`claim_rows`.
    """
    rows = []
    for r in comp.results:
        done = is_complete(r)
        rows.append(
            {
                "model": r["model"],
                "answer": answer_state(r),
                "supported": len((r.get("fact_check") or {}).get("supported", ()))
                if done
                else None,
                "not in the scan": len(r.get("unsupported_claims") or ()) if done else None,
            }
        )
    return rows


def claim_rows(comp: Comparison) -> list[Row]:
    """Every claim of every answer with its check, unsupported ones first."""
    rows: list[Row] = []
    for verdict, key in (("not in the scan — verify", "unsupported"), ("in the scan", "supported")):
        for r in comp.results:
            kept = r.get("fact_check") or {}
            rows += [
                {"model": r["model"], "kind": c["kind"], "claim": c["value"], "check": verdict}
                for c in kept.get(key, ())
            ]
    return rows


def _port(p: Mapping[str, Any]) -> str:
    return f"{p['host']} {p['port']}/{p['protocol']} {p['service']} ({p['level']})"


def coverage_rows(comp: Comparison) -> list[Row]:
    """One row per model: hosts and high-risk ports mentioned (n/total) and those left out."""
    rows = []
    for r in comp.results:
        cov = r.get("coverage") or {}
        hosts_in, hosts_out = cov.get("hosts_mentioned", []), cov.get("hosts_missed", [])
        ports_in, ports_out = cov.get("ports_mentioned", []), cov.get("ports_missed", [])
        rows.append(
            {
                "model": r["model"],
                "hosts mentioned": f"{len(hosts_in)}/{len(hosts_in) + len(hosts_out)}",
                "hosts left out": ", ".join(hosts_out),
                "high-risk ports mentioned": f"{len(ports_in)}/{len(ports_in) + len(ports_out)}",
                "high-risk ports left out": ", ".join(_port(p) for p in ports_out),
            }
        )
    return rows


def leaderboard_rows(standings: Iterable[Standing]) -> list[Row]:
    """The leaderboard as table rows."""
    return [
        {
            "model": s.model,
            "comparisons": s.comparisons,
            "wins": s.wins,
            "ties": s.ties,
            "losses": s.losses,
            "avg tokens/s": _num(s.avg_tokens_per_s, 1),
            "avg time to first token (s)": _num(s.avg_ttft_s, 3),
            "avg unsupported claims": _num(s.avg_unsupported),
        }
        for s in standings
    ]
