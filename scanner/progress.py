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
