"""Feed files in, records out: NVD CVE JSON 2.0 and CISA's Known Exploited Vulnerabilities JSON.

A file is read whole and checked before anything is returned, so a refused file stores nothing:
it must be JSON (a truncated download is not), one of the two schemas (an NVD 1.1 ``CVE_Items``
file is named as such), and hold as many entries as its own header says (``resultsPerPage`` for
NVD, ``count`` for the catalog). Every refusal is a :class:`FeedRefused` whose message says what
was wrong and what to bring instead; it never quotes the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from feeds.models import CpeRange, CveRecord, FeedRefused, KevEntry

MAX_FEED_BYTES = 1024 * 1024 * 1024
CVE_ID = re.compile(r"CVE-\d{4}-\d{4,7}")
DESCRIPTION_CHARS = 300
# The CVSS versions NVD may give, newest first; a CVE's score is the newest one NVD gives.
_METRICS = ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2")
_NVD_HINT = (
    'Bring an NVD CVE JSON 2.0 file (its top level has "format": "NVD_CVE", "version": '
    '"2.0" and "vulnerabilities") or the CISA catalog known_exploited_vulnerabilities.json.'
)


@dataclass(frozen=True, slots=True)
class Feed:
    """A checked feed file: its kind, its own version stamp, and its records."""

    kind: str  # "nvd" or "kev"
    version: str
    cves: tuple[CveRecord, ...] = ()
    kev: tuple[KevEntry, ...] = ()

    @property
    def count(self) -> int:
        """How many records the file holds."""
        return len(self.cves) if self.kind == "nvd" else len(self.kev)


def load_feed(data: bytes) -> Feed:
    """Check and read one feed file, or raise FeedRefused."""
    if len(data) > MAX_FEED_BYTES:
        raise FeedRefused(
            f"The file is {len(data) / 1048576:.0f} MiB, over the "
            f"{MAX_FEED_BYTES // 1048576} MiB limit for a feed file; import the NVD feed a year at "
            "a time. Nothing was stored."
        )
    if not data.strip():
        raise FeedRefused(f"The file is empty. {_NVD_HINT} Nothing was stored.")
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise FeedRefused(
            f"The file is not complete JSON (it breaks at line {exc.lineno}, column {exc.colno}): "
            "it is truncated or not a feed. Download it again, unzip it if it came zipped. "
            "Nothing was stored."
        ) from None
    except (UnicodeDecodeError, RecursionError):
        raise FeedRefused(f"The file is not JSON text. {_NVD_HINT} Nothing was stored.") from None
    if not isinstance(doc, dict):
        raise FeedRefused(f"The file is JSON but not a feed. {_NVD_HINT} Nothing was stored.")
    if "CVE_Items" in doc:
        raise FeedRefused(
            "This is an NVD 1.1 feed (CVE_Items), which NVD has retired. Bring the CVE JSON 2.0 "
            "files instead. Nothing was stored."
        )
    if doc.get("format") == "NVD_CVE":
        return _nvd(doc)
    if "catalogVersion" in doc and "vulnerabilities" in doc:
        return _kev(doc)
    raise FeedRefused(
        f"The file is JSON but not a feed ScanScribe reads. {_NVD_HINT} Nothing was stored."
    )


def _refuse(what: str) -> FeedRefused:
    return FeedRefused(f"{what}; the file was refused as damaged. Nothing was stored.")


def _nvd(doc: dict[str, Any]) -> Feed:
    version = str(doc.get("version", ""))
    if not version.startswith("2."):
        raise FeedRefused(
            f"This NVD file says schema version {version[:10]!r}; only CVE JSON 2.x is read. "
            "Nothing was stored."
        )
    items = doc.get("vulnerabilities")
    if not isinstance(items, list):
        raise _refuse('The NVD file has no "vulnerabilities" list')
    per_page = doc.get("resultsPerPage")
    if isinstance(per_page, int) and per_page != len(items):
        raise _refuse(
            f"The NVD file says it holds {per_page} CVEs but {len(items)} are there (cut short?)"
        )
    cves = tuple(_cve(item, i) for i, item in enumerate(items))
    return Feed("nvd", str(doc.get("timestamp", "")), cves=cves)


def _cve(item: Any, index: int) -> CveRecord:
    cve = item.get("cve") if isinstance(item, dict) else None
    cve_id = cve.get("id") if isinstance(cve, dict) else None
    if not isinstance(cve_id, str) or not CVE_ID.fullmatch(cve_id):
        raise _refuse(f"Entry {index + 1} of the NVD file has no CVE id")
    assert isinstance(cve, dict)
    try:
        ranges = tuple(_ranges(cve_id, cve.get("configurations") or ()))
        return CveRecord(
            cve_id,
            _cvss(cve.get("metrics") or {}),
            str(cve.get("published", ""))[:10],
            _description(cve.get("descriptions") or ()),
            ranges,
        )
    except (AttributeError, TypeError, ValueError):
        raise _refuse(f"{cve_id} in the NVD file does not follow the CVE JSON 2.0 schema") from None


def _description(items: Any) -> str:
    text = next((d.get("value", "") for d in items if d.get("lang") == "en"), "")
    line = " ".join(str(text).split())
    return line if len(line) <= DESCRIPTION_CHARS else line[: DESCRIPTION_CHARS - 1] + "…"


def _cvss(metrics: dict[str, Any]) -> float | None:
    for key in _METRICS:
        entries = metrics.get(key) or []
        if not entries:
            continue
        best = next((m for m in entries if m.get("type") == "Primary"), entries[0])
        score = best.get("cvssData", {}).get("baseScore")
        if isinstance(score, int | float) and 0 <= score <= 10:
            return float(score)
    return None


def split_cpe23(name: str) -> list[str]:
    """The fields of a CPE 2.3 formatted string, with ``\\:`` kept inside its field."""
    fields: list[str] = []
    cur: list[str] = []
    escaped = False
    for ch in name:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    fields.append("".join(cur))
    return fields


def _ranges(cve_id: str, configurations: Any) -> list[CpeRange]:
    out: list[CpeRange] = []
    for config in configurations:
        for node in config.get("nodes") or ():
            for m in node.get("cpeMatch") or ():
                if not m.get("vulnerable", False):
                    continue
                criteria = str(m.get("criteria", ""))
                f = split_cpe23(criteria)
                if len(f) < 6 or f[0] != "cpe" or f[1] != "2.3":
                    raise ValueError(criteria)
                out.append(
                    CpeRange(
                        cve_id,
                        f[2].lower(),
                        f[3].lower(),
                        f[4].lower(),
                        f[5].lower(),
                        str(m.get("versionStartIncluding", "")),
                        str(m.get("versionStartExcluding", "")),
                        str(m.get("versionEndIncluding", "")),
                        str(m.get("versionEndExcluding", "")),
                        criteria,
                    )
                )
    return out


def _kev(doc: dict[str, Any]) -> Feed:
    items = doc.get("vulnerabilities")
    if not isinstance(items, list):
        raise _refuse('The KEV catalog has no "vulnerabilities" list')
    count = doc.get("count")
    if isinstance(count, int) and count != len(items):
        raise _refuse(
            f"The KEV catalog says it holds {count} entries but {len(items)} are there (cut short?)"
        )
    out: list[KevEntry] = []
    for i, item in enumerate(items):
        cve_id = item.get("cveID") if isinstance(item, dict) else None
        if not isinstance(cve_id, str) or not CVE_ID.fullmatch(cve_id):
            raise _refuse(f"Entry {i + 1} of the KEV catalog has no cveID")
        assert isinstance(item, dict)
        out.append(
            KevEntry(
                cve_id,
                str(item.get("vendorProject", "")),
                str(item.get("product", "")),
                str(item.get("vulnerabilityName", "")),
                str(item.get("dateAdded", "")),
                str(item.get("dueDate", "")),
                str(item.get("knownRansomwareCampaignUse", "")),
            )
        )
    return Feed("kev", str(doc.get("catalogVersion", "")), kev=tuple(out))
