"""Which site runs a scan: the one named, or the one whose live workers' scope holds every target.

Pure: heartbeats and addresses in, a site name (or a refusal naming the target) out. Nothing is
queued when it refuses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from workers.board import Heartbeat
from workers.errors import NoWorker


def holds(beat: Heartbeat, address: str) -> bool:
    """Whether ``address`` lies in the scope this worker reported."""
    ip = ipaddress.ip_address(address)
    for net in beat.scope:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def _sites(beats: Sequence[Heartbeat]) -> str:
    by_site: dict[str, set[str]] = {}
    for b in beats:
        by_site.setdefault(b.site, set()).update(b.scope)
    if not by_site:
        return "no worker has sent a heartbeat in the last few seconds"
    return "live sites: " + "; ".join(
        f"{site} ({', '.join(sorted(nets))})" for site, nets in sorted(by_site.items())
    )


def choose_site(
    addresses: Sequence[str],
    needs_root: bool,
    beats: Sequence[Heartbeat],
    site: str = "",
    now: float | None = None,
) -> str:
    """The site to queue on, or NoWorker naming the target (or site) that cannot be served."""
    live = [b for b in beats if b.live(now)]
    able = [b for b in live if b.root or not needs_root]
    if site:
        mine = [b for b in live if b.site == site]
        if not mine:
            raise NoWorker(
                f"Site {site!r} refused: none of its workers is live. Start one with "
                f"`python -m scanner worker --site {site}`; {_sites(live)}."
            )
        mine = [b for b in mine if b.root or not needs_root]
        if not mine:
            raise NoWorker(
                f"Site {site!r} refused: the profile needs root and none of its live workers "
                "runs as root. Pick another profile or run a worker there as root."
            )
        for address in addresses:
            if not any(holds(b, address) for b in mine):
                raise NoWorker(
                    f"Target {address} refused: it is outside the scope of site {site!r} "
                    f"({', '.join(sorted({n for b in mine for n in b.scope}))})."
                )
        return site
    for address in addresses:
        if not any(holds(b, address) for b in live):
            raise NoWorker(
                f"Target {address} refused: no live worker's scope holds it ({_sites(live)}). "
                "Start a worker at a site that may scan it, or leave it out."
            )
    whole = [b for b in able if all(holds(b, a) for a in addresses)]
    if not whole:
        if needs_root and any(all(holds(b, a) for a in addresses) for b in live):
            raise NoWorker(
                "The profile needs root and no live worker whose scope holds these targets "
                "runs as root. Pick another profile or run that site's worker as root."
            )
        raise NoWorker(
            "No one site's workers hold every target; scan each site's targets separately "
            f"({_sites(live)})."
        )
    # The site with the most free slots among those that can take it all; then by name.
    free: dict[str, int] = {}
    for b in whole:
        free[b.site] = free.get(b.site, 0) + max(0, b.concurrency - b.running)
    return sorted(free, key=lambda s: (-free[s], s))[0]
