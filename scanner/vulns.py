"""Known vulnerabilities reported by NSE scripts, as :class:`~scanner.models.Finding` objects.

Three shapes of script output are read:

- ``vulners``: a table per CPE holding one table per entry (``id``, ``cvss``, ``type``,
  ``is_exploit``). Every entry whose id is a CVE id becomes a finding with its score; an exploit
  entry (``is_exploit`` true, such as a Metasploit module or an Exploit-DB item) whose id names a
  CVE flags that CVE's finding as having a public exploit.
- nmap's ``vulns`` library (ssl-heartbleed, ssl-ccs-injection, ssl-poodle, smb-vuln-*,
  http-vuln-* and the other ``vuln``-category scripts): a table per problem with ``title``,
  ``state``, ``ids``, ``scores`` and ``refs``. Only ``VULNERABLE`` and ``LIKELY VULNERABLE``
  states are findings; the CVE ids come from ``ids``, the table's key or, where the script
  lists none (ssl-heartbleed, ssl-ccs-injection), from the CVE ids in its reference URLs.
- ``vulscan``: text only (it writes no tables); each ``[CVE-YYYY-NNNN] description`` line is a
  finding without a score.

The parser feeds a script's ``<table>``/``<elem>`` events to a :class:`TableCollector` only for
these scripts, so only one script's small tree is held at a time and none is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from scanner.models import Finding

CVE_ID = re.compile(r"CVE-\d{4}-\d{4,7}", re.IGNORECASE)
_CVE_FULL = re.compile(r"CVE-\d{4}-\d{4,7}")
_VULSCAN_LINE = re.compile(r"^\[(CVE-\d{4}-\d{4,7})\] ?(.*)$", re.MULTILINE)
# What one script may hand the collector before the rest of it is ignored; real vulners output
# is a few hundred entries of five nodes each.
MAX_NODES = 50_000
MAX_TEXT = 4096
EVIDENCE_CHARS = 200
FOUND_STATES = ("VULNERABLE", "LIKELY VULNERABLE")

# A node of a script's structured output: a table is (key, [children]), an elem is (key, text).
Table = tuple[str, list["Node"]]
Elem = tuple[str, str]
Node = Table | Elem


def collects(script_id: str, output: str) -> bool:
    """Whether a script's tables are worth collecting (vulners, or a vulns-library verdict)."""
    return script_id == "vulners" or "VULNERABLE" in output


class TableCollector:
    """Builds the table tree of one ``<script>`` from expat start, end and text events."""

    def __init__(self) -> None:
        self.root: list[Node] = []
        self._stack: list[list[Node]] = [self.root]
        self._key: str | None = None
        self._text: list[str] = []
        self._text_len = 0
        self._nodes = 0
        self._skip = 0  # depth of elements being ignored once the node budget is spent

    def start(self, name: str, attrs: dict[str, str]) -> None:
        """An element starts inside the script."""
        if self._skip or self._nodes >= MAX_NODES:
            self._skip += 1
            return
        self._nodes += 1
        if name == "table":
            children: list[Node] = []
            self._stack[-1].append((attrs.get("key", ""), children))
            self._stack.append(children)
        elif name == "elem":
            self._key = attrs.get("key", "")
            self._text = []
            self._text_len = 0
        else:
            self._skip += 1

    def text(self, data: str) -> None:
        """Character data; only an elem's text is kept, and only its first ``MAX_TEXT``."""
        if self._key is not None and self._text_len < MAX_TEXT:
            self._text.append(data)
            self._text_len += len(data)

    def end(self, name: str) -> bool:
        """An element ends; True when it is the script itself, and collecting is over."""
        if self._skip:
            self._skip -= 1
            return False
        if name == "script":
            return True
        if name == "table" and len(self._stack) > 1:
            self._stack.pop()
        elif name == "elem" and self._key is not None:
            value = "".join(self._text)[:MAX_TEXT]
            self._stack[-1].append((self._key, value))
            self._key = None
            self._text = []
        return False


def _elems(children: list[Node]) -> dict[str, str]:
    return {k: v for k, v in children if isinstance(v, str) and k}


def _tables(children: list[Node]) -> list[Table]:
    return [(k, v) for k, v in children if isinstance(v, list)]


def _table(children: list[Node], key: str) -> list[Node]:
    return next((v for k, v in _tables(children) if k == key), [])


def _texts(children: list[Node]) -> list[str]:
    return [v for _k, v in children if isinstance(v, str)]


def _score(value: str | None) -> float | None:
    try:
        score = float(value) if value else None
    except ValueError:
        return None
    return score if score is not None and 0.0 <= score <= 10.0 else None


def _short(value: str) -> str:
    line = " ".join(value.split())
    return line if len(line) <= EVIDENCE_CHARS else line[: EVIDENCE_CHARS - 1] + "…"


def _cve(value: str) -> str:
    return value.upper()


def from_vulners(tables: list[Node]) -> tuple[Finding, ...]:
    """The CVE entries of vulners' tables, with scores, and exploit flags from exploit entries."""
    found: dict[str, Finding] = {}
    exploited: set[str] = set()
    for cpe, entries in _tables(tables):
        for _key, entry in _tables(entries):
            e = _elems(entry)
            vid = e.get("id", "").strip()
            is_exploit = e.get("is_exploit", "").lower() == "true"
            if is_exploit:
                exploited.update(_cve(m) for m in CVE_ID.findall(vid))
            if not _CVE_FULL.fullmatch(vid):
                continue
            cvss = _score(e.get("cvss"))
            old = found.get(vid)
            if old is not None and (old.cvss or 0.0) >= (cvss or 0.0):
                continue
            found[vid] = Finding(
                vid,
                cvss,
                is_exploit,
                "vulners",
                "",
                _short(f"listed by vulners for {cpe}" if cpe else "listed by vulners"),
            )
    return tuple(
        Finding(f.id, f.cvss, True, f.source, f.state, f.evidence)
        if f.id in exploited and not f.exploit
        else f
        for f in found.values()
    )


def from_vuln_tables(script_id: str, tables: list[Node]) -> tuple[Finding, ...]:
    """Findings from nmap's vulns-library tables: one per CVE of each VULNERABLE problem."""
    out: dict[str, Finding] = {}
    for key, body in _tables(tables):
        e = _elems(body)
        state = " ".join(e.get("state", "").split()).upper()
        if not state.startswith(FOUND_STATES):
            continue
        ids = _texts(_table(body, "ids"))
        cves = [_cve(m) for i in ids for m in CVE_ID.findall(i)]
        cves += [_cve(m) for m in CVE_ID.findall(key)]
        if not cves:
            cves = [_cve(m) for ref in _texts(_table(body, "refs")) for m in CVE_ID.findall(ref)]
        scores = [_score(v) for k, v in _elems(_table(body, "scores")).items() if "CVSS" in k]
        cvss = max((s for s in scores if s is not None), default=None)
        exploit = "EXPLOITABLE" in state
        title = e.get("title", "")
        names = list(dict.fromkeys(cves)) or [ids[0] if ids else _short(title or key)]
        for name in names:
            if name not in out:
                out[name] = Finding(name, cvss, exploit, script_id, state, _short(title))
    return tuple(out.values())


def from_vulscan(output: str) -> tuple[Finding, ...]:
    """vulscan's ``[CVE-…] description`` lines (it prints no scores and no tables)."""
    out: dict[str, Finding] = {}
    for m in _VULSCAN_LINE.finditer(output):
        vid = m.group(1).upper()
        if vid not in out:
            out[vid] = Finding(vid, None, False, "vulscan", "", _short(m.group(2)))
    return tuple(out.values())


def script_findings(script_id: str, output: str, tables: list[Node]) -> tuple[Finding, ...]:
    """The findings of one script, from its tables (or its text, for vulscan)."""
    if script_id == "vulscan":
        return from_vulscan(output)
    if script_id == "vulners":
        return from_vulners(tables)
    return from_vuln_tables(script_id, tables)


def merge(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """One finding per (id, source), the first kept; order as given."""
    seen: dict[tuple[str, str], Finding] = {}
    for f in findings:
        seen.setdefault((f.id, f.source), f)
    return tuple(seen.values())


def by_score(findings: Iterable[Finding]) -> list[Finding]:
    """Highest CVSS first (unscored last), then exploit-flagged first, then by id."""
    return sorted(
        findings,
        key=lambda f: (-(f.cvss if f.cvss is not None else -1.0), not f.exploit, f.id, f.source),
    )


def is_cve(finding: Finding) -> bool:
    """Whether the finding's id is a CVE id."""
    return _CVE_FULL.fullmatch(finding.id) is not None


def cve_text(f: Finding) -> str:
    """``CVE-2019-6111 (5.8, exploit)``: the id with its score and exploit flag when given."""
    notes = ([f"{f.cvss:g}"] if f.cvss is not None else []) + (["exploit"] if f.exploit else [])
    return f.id + (f" ({', '.join(notes)})" if notes else "")


def finding_json(f: Finding) -> dict[str, object]:
    """A finding as the JSON outputs print it."""
    return {
        "id": f.id,
        "cvss": f.cvss,
        "exploit": f.exploit,
        "source": f.source,
        "state": f.state,
        "evidence": f.evidence,
    }
