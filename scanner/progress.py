"""nmap's task progress, read from the ``<taskprogress>`` lines of its XML output stream."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TASK = re.compile(rb"<task(progress|begin|end)\b([^>]*)/>")
_ATTR = re.compile(rb'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class TaskProgress:
    """Where nmap stands in its current task: name, percent done and seconds left (if known)."""

    task: str
    percent: float
    remaining_s: float | None


def parse_progress(line: bytes) -> TaskProgress | None:
    """The progress a line of nmap XML reports, or None when it is not a task line."""
    m = _TASK.search(line)
    if m is None:
        return None
    attrs = {k.decode("ascii"): v.decode("utf-8", "replace") for k, v in _ATTR.findall(m.group(2))}
    task = attrs.get("task", "")
    kind = m.group(1)
    if kind == b"begin":
        return TaskProgress(task=task, percent=0.0, remaining_s=None)
    if kind == b"end":
        return TaskProgress(task=task, percent=100.0, remaining_s=0.0)
    try:
        percent = min(100.0, max(0.0, float(attrs.get("percent", "0"))))
    except ValueError:
        percent = 0.0
    remaining: float | None
    try:
        remaining = max(0.0, float(attrs["remaining"]))
    except (KeyError, ValueError):
        remaining = None
    return TaskProgress(task=task, percent=percent, remaining_s=remaining)


@dataclass(frozen=True)
class Phase:
    """One stage of a scan: its name in words and its share of the whole scan's time."""

    kind: str
    words: str
    weight: float


@dataclass(frozen=True)
class Overall:
    """Where a scan stands as a whole: the phase in words, which step of how many, and percent."""

    phase: str
    step: int
    steps: int
    percent: float


# nmap's task names, as its <taskbegin>/<taskprogress> lines give them, by the phase they are in.
_TASK_KIND = (
    ("ping scan", "discovery"),
    ("parallel dns", "discovery"),
    ("connect scan", "port"),
    ("syn stealth scan", "port"),
    ("udp scan", "port"),
    ("service scan", "service"),
    ("os detection", "os"),
    ("nse", "script"),
    ("script scan", "script"),
    ("traceroute", "script"),
)
_WORDS = {
    "discovery": "Host discovery",
    "port": "Port scan",
    "service": "Service detection",
    "os": "OS detection",
    "script": "Script scan",
}
# Rough shares of a scan's time on a LAN; only for the overall bar, never for a decision.
_WEIGHT = {"discovery": 5.0, "port": 55.0, "service": 25.0, "os": 5.0, "script": 10.0}


def phases(args: tuple[str, ...]) -> tuple[Phase, ...]:
    """The phases nmap goes through, in order, for a profile's fixed arguments."""
    kinds = ["discovery", "port"]
    if "-sV" in args:
        kinds.append("service")
    if "-O" in args:
        kinds.append("os")
    if "-sV" in args or "--script" in args:
        kinds.append("script")  # version detection runs its own NSE scripts too
    return tuple(Phase(k, _WORDS[k], _WEIGHT[k]) for k in kinds)


def phase_words(task: str) -> str:
    """nmap's task name in words ("Service detection"), or the task itself when unknown."""
    kind = _kind(task)
    return _WORDS[kind] if kind else task


def _kind(task: str) -> str | None:
    low = task.lower()
    return next((kind for prefix, kind in _TASK_KIND if low.startswith(prefix)), None)


def overall(args: tuple[str, ...], task: str, percent: float) -> Overall | None:
    """Progress across all phases from nmap's current task and its percent; None if unknown.

    Phases before the current one count as done, so the bar only moves forward while nmap
    moves through its phases in order.
    """
    plan = phases(args)
    kind = _kind(task)
    at = next((i for i, p in enumerate(plan) if p.kind == kind), None)
    if at is None:
        return None
    total = sum(p.weight for p in plan)
    done = sum(p.weight for p in plan[:at]) + plan[at].weight * min(100.0, max(0.0, percent)) / 100
    return Overall(plan[at].words, at + 1, len(plan), 100.0 * done / total)
