"""Import of nmap XML files: read with a size cap, parse, name the targets, store all or nothing."""

from __future__ import annotations

import ipaddress
import logging
import re
import shlex
from dataclasses import replace
from pathlib import Path

from scanner.errors import ImportRefused
from scanner.models import Report
from scanner.parser import MAX_IMPORT_BYTES, parse_report
from store.base import Store
from store.records import new_id

log = logging.getLogger(__name__)

# An address, CIDR or dash range as nmap accepts it on its command line (names are left out:
# they cannot be told apart from file names).
_TARGETISH = re.compile(r"^[0-9A-Fa-f:.,\-/*]+$")


def read_capped(path: Path, max_bytes: int = MAX_IMPORT_BYTES) -> bytes:
    """The bytes of ``path``, or ImportRefused when it is missing, unreadable or too big."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImportRefused(f"Cannot read {path.name}: {exc.strerror}.") from None
    if len(data) > max_bytes:
        raise ImportRefused(
            f"The file is over the {max_bytes / 1048576:.0f} MiB limit for nmap XML; "
            "nothing was imported."
        )
    return data


def _is_target(token: str) -> bool:
    if not _TARGETISH.match(token) or not any(c.isdigit() for c in token):
        return False
    if ":" in token and "." not in token:
        try:
            ipaddress.ip_network(token, strict=False)
        except ValueError:
            return False
        return True
    return "." in token


def targets_from_args(args: str) -> tuple[str, ...]:
    """The address-like targets on an nmap command line, so imports can be matched for diffs."""
    try:
        tokens = shlex.split(args)
    except ValueError:
        tokens = args.split()
    return tuple(t for t in tokens[1:] if not t.startswith("-") and _is_target(t))


def import_bytes(
    store: Store,
    data: bytes,
    *,
    filename: str,
    owner: str = "",
    max_bytes: int = MAX_IMPORT_BYTES,
) -> Report:
    """Parse nmap XML and save it as a new report; on ImportRefused nothing is stored."""
    report = parse_report(
        data,
        report_id=new_id("rep"),
        source=f"import: {filename}"[:200],
        owner=owner,
        max_bytes=max_bytes,
    )
    if not report.targets:
        report = replace(report, targets=targets_from_args(report.args))
    store.save_report(report)
    log.info("imported %s as %s (%d hosts)", filename, report.id, len(report.hosts))
    return report
