"""The feeds' records: CVEs with their affected CPE ranges, known-exploited entries, imports."""

from __future__ import annotations

from dataclasses import dataclass

GUESS_NOTE = "version guess — verify"


class FeedError(Exception):
    """Base of the feeds' errors."""


class FeedRefused(FeedError):
    """A feed file was refused (wrong schema, truncated, too big); nothing was stored."""


@dataclass(frozen=True, slots=True)
class CpeRange:
    """One vulnerable ``cpeMatch`` of an NVD configuration, its CPE split into parts.

    ``version`` is the CPE's own version field (``*`` or ``-`` for any); the four bounds are
    NVD's ``versionStartIncluding`` … ``versionEndExcluding``, empty when absent.
    """

    cve_id: str
    part: str
    vendor: str
    product: str
    version: str
    start_incl: str = ""
    start_excl: str = ""
    end_incl: str = ""
    end_excl: str = ""
    criteria: str = ""

    def describe(self) -> str:
        """The range in words, such as ``apache:http_server >= 2.4.0, < 2.4.50``."""
        bounds = [
            f"{op} {v}"
            for op, v in (
                (">=", self.start_incl),
                (">", self.start_excl),
                ("<=", self.end_incl),
                ("<", self.end_excl),
            )
            if v
        ]
        if self.version not in ("*", "-", ""):
            bounds.insert(0, f"= {self.version}")
        return f"{self.vendor}:{self.product} " + (", ".join(bounds) or "any version")


@dataclass(frozen=True, slots=True)
class CveRecord:
    """One CVE from an NVD CVE JSON 2.0 file."""

    id: str
    cvss: float | None
    published: str
    description: str
    ranges: tuple[CpeRange, ...] = ()


@dataclass(frozen=True, slots=True)
class KevEntry:
    """One entry of CISA's Known Exploited Vulnerabilities catalog."""

    cve_id: str
    vendor: str
    product: str
    name: str
    date_added: str
    due_date: str = ""
    ransomware: str = ""


@dataclass(frozen=True, slots=True)
class FeedImport:
    """One imported feed file, as ``feeds status`` lists it."""

    kind: str  # "nvd" or "kev"
    name: str  # the file's name
    version: str  # NVD's timestamp or the catalog's version
    count: int
    imported_at: float


@dataclass(frozen=True, slots=True)
class Guess:
    """A CVE whose affected versions include a port's service: a version guess, to verify."""

    cve_id: str
    cvss: float | None
    known_exploited: bool
    matched: str  # the CPE and range that matched, in words
    service: str  # the CPE or product and version of the port
    note: str = GUESS_NOTE
