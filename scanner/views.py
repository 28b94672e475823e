"""Tables, filters and chart data for one report, built once and reused on every page rerun.

A :class:`ReportView` holds the report with its hosts and ports tables (risk included) and the
aggregates the charts need. The Reports page caches one per report id; filters return a slice,
and the page shows one page of it at a time, so a 100,000-port report never crosses the wire
whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from scanner.diff import ReportDiff
from scanner.export import hosts_table, ports_table
from scanner.models import Host, Port, Report
from scanner.risk import LEVELS, RANK

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")


class FilterError(ValueError):
    """A filter value the user typed cannot be understood; the message says why."""


def parse_port_filter(text: str) -> frozenset[int]:
    """``22``, ``22,80`` or ``8000-8100`` as a set of port numbers; empty text means any port."""
    ports: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo_text, sep, hi_text = part.partition("-")
        if not lo_text.isdigit() or (sep and not hi_text.isdigit()):
            raise FilterError(f"{part[:20]!r} is not a port, a list like 22,80 or a range 1-1024")
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
        if not 0 <= lo <= hi <= 65535:
            raise FilterError(f"{part[:20]!r} is outside 0-65535")
        if hi - lo + len(ports) > 65535:
            raise FilterError("too many ports in the filter")
        ports.update(range(lo, hi + 1))
    return frozenset(ports)


@dataclass(frozen=True)
class PortFilter:
    """What the analyst narrowed the ports table to; empty fields match everything."""

    host: str = ""
    ports: frozenset[int] = frozenset()
    services: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing is filtered."""
        return not (self.host or self.ports or self.services or self.states or self.risks)


@dataclass
class ReportView:
    """One report's tables and aggregates, computed once."""

    report: Report
    hosts: pd.DataFrame
    ports: pd.DataFrame
    _by_address: dict[str, Host] = field(default_factory=dict, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def _once(self, key: str, make: Callable[[], T]) -> T:
        """Compute an aggregate once; the report never changes under a view."""
        if key not in self._memo:
            self._memo[key] = make()
        value: T = self._memo[key]
        return value

    @classmethod
    def build(cls, report: Report) -> ReportView:
        """Build the tables (with risk) of ``report``."""
        hosts = hosts_table(report)
        ports = ports_table(report)
        # Categoricals make the repeated strings cheap and the filters fast on big reports.
        for col in ("protocol", "state", "risk"):
            ports[col] = ports[col].astype("category")
        # Worst first, once: the analyst reads the top of the table; a stable sort keeps the
        # scan's host and port order within each level.
        hosts = hosts.sort_values("risk_rank", ascending=False, kind="stable", ignore_index=True)
        ports = ports.sort_values("risk_rank", ascending=False, kind="stable", ignore_index=True)
        return cls(report, hosts, ports, {h.address: h for h in report.hosts})

    # -- choices for the filter widgets ----------------------------------------------------------
    def services(self) -> list[str]:
        """Service names present, most common first."""

        def make() -> list[str]:
            counts = self.ports["service"].value_counts()
            return [str(s) for s in counts.index if counts[s] > 0]

        return self._once("services", make)

    def states(self) -> list[str]:
        """Port states present."""
        return self._once("states", lambda: sorted(str(s) for s in self.ports["state"].unique()))

    # -- filters ---------------------------------------------------------------------------------
    def filter_ports(self, f: PortFilter) -> pd.DataFrame:
        """The rows of the ports table that pass the filter, highest risk first."""
        df = self.ports
        if not f.empty:
            mask = None
            if f.host:
                needle = f.host.strip().lower()
                m = df["address"].str.lower().str.contains(needle, regex=False)
                names = self.hosts.loc[
                    self.hosts["hostnames"].str.lower().str.contains(needle, regex=False),
                    "address",
                ]
                m = m | df["address"].isin(set(names))
                mask = m
            for col, values in (
                ("service", f.services),
                ("state", f.states),
                ("risk", f.risks),
            ):
                if values:
                    m = df[col].isin(values)
                    mask = m if mask is None else mask & m
            if f.ports:
                m = df["port"].isin(f.ports)
                mask = m if mask is None else mask & m
            if mask is not None:
                df = df[mask]
        return df

    def filter_hosts(self, host: str = "", risks: tuple[str, ...] = ()) -> pd.DataFrame:
        """The hosts table narrowed by address/hostname text and risk level."""
        df = self.hosts
        if host:
            needle = host.strip().lower()
            df = df[
                df["address"].str.lower().str.contains(needle, regex=False)
                | df["hostnames"].str.lower().str.contains(needle, regex=False)
            ]
        if risks:
            df = df[df["risk"].isin(risks)]
        return df

    # -- charts ----------------------------------------------------------------------------------
    def open_ports(self) -> pd.DataFrame:
        """Only the open ports."""
        return self._once("open_ports", lambda: self.ports[self.ports["state"] == "open"])

    def open_by_service(self, top: int = 15) -> pd.DataFrame:
        """Open ports counted by service name, the most common ``top``."""
        return self._once(f"by_service{top}", lambda: self._open_by_service(top))

    def _open_by_service(self, top: int) -> pd.DataFrame:
        import pandas as pd

        op = self.open_ports()
        counts = op["service"].astype(str).replace("", "(unidentified)").value_counts().head(top)
        return pd.DataFrame({"open ports": counts.to_numpy()}, index=counts.index.rename("service"))

    def hosts_by_risk(self) -> pd.DataFrame:
        """How many hosts sit at each risk level, critical first."""
        return self._once("hosts_by_risk", self._hosts_by_risk)

    def _hosts_by_risk(self) -> pd.DataFrame:
        import pandas as pd

        counts = self.hosts["risk"].value_counts()
        order = list(LEVELS)
        return pd.DataFrame(
            {"hosts": [int(counts.get(lvl, 0)) for lvl in order]},
            index=pd.Index(order, name="risk"),
        )

    def common_ports(self, top: int = 15) -> pd.DataFrame:
        """The open ports seen on the most hosts."""
        return self._once(f"common_ports{top}", lambda: self._common_ports(top))

    def _common_ports(self, top: int) -> pd.DataFrame:
        import pandas as pd

        op = self.open_ports()
        labels = op["port"].astype(str) + "/" + op["protocol"].astype(str)
        counts = labels.value_counts().head(top)
        return pd.DataFrame({"hosts": counts.to_numpy()}, index=counts.index.rename("port"))

    def risk_counts(self) -> dict[str, int]:
        """Open ports per risk level."""
        return self._once("risk_counts", self._risk_counts)

    def _risk_counts(self) -> dict[str, int]:
        counts = self.open_ports()["risk"].value_counts()
        return {
            lvl: int(counts.get(lvl, 0)) for lvl in sorted(RANK, key=RANK.__getitem__, reverse=True)
        }

    # -- script output ---------------------------------------------------------------------------
    def host(self, address: str) -> Host | None:
        """The host with this address."""
        return self._by_address.get(address)

    def scripts(
        self, rows: pd.DataFrame, limit: int = 50
    ) -> tuple[list[tuple[Host, Port | None, str, str]], int]:
        """Script outputs of the hosts and ports in ``rows`` (at most ``limit``) and the total."""
        everything = len(rows) == len(self.ports)
        wanted: set[tuple[str, int, str]] = set()
        if everything:
            addresses = list(self._by_address)
        else:
            wanted = set(
                zip(rows["address"], rows["port"], rows["protocol"].astype(str), strict=True)
            )
            addresses = list(dict.fromkeys(rows["address"]))
        out: list[tuple[Host, Port | None, str, str]] = []
        total = 0
        for address in addresses:
            h = self._by_address.get(address)
            if h is None:
                continue
            for s in h.scripts:
                total += 1
                if len(out) < limit:
                    out.append((h, None, s.id, s.output))
            for p in h.ports:
                if not p.scripts or (
                    not everything and (address, p.port, p.protocol) not in wanted
                ):
                    continue
                for s in p.scripts:
                    total += 1
                    if len(out) < limit:
                        out.append((h, p, s.id, s.output))
        return out, total


def diff_frames(d: ReportDiff, limit: int = 500) -> dict[str, pd.DataFrame]:
    """The parts of a diff as small tables (at most ``limit`` rows each), titled for display."""
    import pandas as pd

    hosts_cols = ["address", "hostnames", "open ports"]
    ports_cols = ["address", "port", "service", "before", "after"]

    def hosts(entries: tuple[Any, ...]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                (h.address, ", ".join(h.hostnames), " ".join(p.label for p in h.open_ports)[:300])
                for h in entries[:limit]
            ],
            columns=hosts_cols,
        )

    def ports(entries: tuple[Any, ...]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                (
                    p.address,
                    f"{p.port}/{p.protocol}",
                    p.service.text(),
                    p.state_before,
                    p.state_after,
                )
                for p in entries[:limit]
            ],
            columns=ports_cols,
        )

    return {
        "New hosts": hosts(d.new_hosts),
        "Gone hosts": hosts(d.gone_hosts),
        "Opened ports": ports(d.opened),
        "Closed ports": ports(d.closed),
        # Not opened or closed: the other scan never probed these ports.
        "Open, not scanned before": ports(d.newly_scanned_open),
        "Open before, not scanned now": ports(d.not_rescanned),
        "Changed services": pd.DataFrame(
            [
                (c.address, f"{c.port}/{c.protocol}", c.before.text(), c.after.text())
                for c in d.changed[:limit]
            ],
            columns=["address", "port", "before", "after"],
        ),
    }
