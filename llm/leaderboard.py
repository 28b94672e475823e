"""The leaderboard across saved model comparisons: verdicts, speed and grounding per model.

A comparison counts towards wins, ties and losses only once the analyst gave a verdict; speed and
unsupported claims are averaged over every answer that reported them, verdict or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from store.records import Comparison

TIE = "tie"


@dataclass(frozen=True)
class Standing:
    """One model's row of the leaderboard."""

    model: str
    comparisons: int
    wins: int
    ties: int
    losses: int
    avg_tokens_per_s: float | None
    avg_ttft_s: float | None
    avg_unsupported: float | None

    @property
    def judged(self) -> int:
        """How many comparisons with a verdict this model took part in."""
        return self.wins + self.ties + self.losses

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for tables and JSON."""
        return asdict(self)


def unsupported_count(result: Mapping[str, Any]) -> int | None:
    """How many claims of one saved answer the fact check could not find in the scan."""
    claims = result.get("unsupported_claims")
    if claims is None:
        fact = result.get("fact_check") or {}
        claims = fact.get("unsupported") if isinstance(fact, Mapping) else None
    return len(claims) if isinstance(claims, list | tuple) else None


def _metric(result: Mapping[str, Any], name: str) -> float | None:
    metrics = result.get("metrics") or {}
    value = metrics.get(name) if isinstance(metrics, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class _Tally:
    def __init__(self) -> None:
        self.comparisons = 0
        self.wins = 0
        self.ties = 0
        self.losses = 0
        self.tps: list[float] = []
        self.ttft: list[float] = []
        self.unsupported: list[float] = []


def leaderboard(comparisons: Iterable[Comparison]) -> list[Standing]:
    """Per model: wins, ties, losses and averages, best first (most wins, then fewest losses)."""
    tallies: dict[str, _Tally] = {}
    for comp in comparisons:
        models = list(dict.fromkeys(comp.models))
        for model in models:
            t = tallies.setdefault(model, _Tally())
            t.comparisons += 1
            if comp.winner == TIE:
                t.ties += 1
            elif comp.winner:
                if comp.winner == model:
                    t.wins += 1
                else:
                    t.losses += 1
        for result in comp.results:
            model = str(result.get("model", ""))
            if model not in tallies:
                continue
            t = tallies[model]
            # A stopped or failed answer says nothing about the model's speed or grounding.
            if result.get("status", "complete") != "complete":
                continue
            tps = _metric(result, "tokens_per_s")
            ttft = _metric(result, "ttft_s")
            bad = unsupported_count(result)
            if tps is not None:
                t.tps.append(tps)
            if ttft is not None:
                t.ttft.append(ttft)
            if bad is not None:
                t.unsupported.append(float(bad))
    rows = [
        Standing(
            model=model,
            comparisons=t.comparisons,
            wins=t.wins,
            ties=t.ties,
            losses=t.losses,
            avg_tokens_per_s=_mean(t.tps),
            avg_ttft_s=_mean(t.ttft),
            avg_unsupported=_mean(t.unsupported),
        )
        for model, t in tallies.items()
    ]
    rows.sort(key=lambda r: (-r.wins, r.losses, -r.ties, r.model))
    return rows
