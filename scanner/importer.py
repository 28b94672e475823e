"""Import of nmap XML files: read with a size cap, parse, name the targets, store all or nothing.

Before a file is read or parsed, its size is checked against the memory the machine has free: a
parse needs up to ``MEMORY_FACTOR`` times the file's size plus ``MEMORY_OVERHEAD`` (the parser
keeps to that bound, see ``scanner.parser``), and a file that cannot fit is refused up front
instead of pushing the machine into swap or the OOM killer.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from llm.mdsafe import visible_controls
from scanner.errors import ImportRefused
from scanner.models import Report
from scanner.parser import MAX_IMPORT_BYTES, parse_report
from store.base import Store
from store.records import new_id

log = logging.getLogger(__name__)

MiB = 1 << 20
MEMORY_FACTOR = 3
MEMORY_OVERHEAD = 100 * MiB
MEMINFO = Path("/proc/meminfo")

MemoryProbe = Callable[[], int | None]


def available_memory(meminfo: Path = MEMINFO) -> int | None:
    """Bytes the kernel says can be allocated without swapping (MemAvailable), None if unknown."""
    try:
        with meminfo.open() as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_needed(size: int) -> int:
    """The most memory importing a file of ``size`` bytes may take."""
    return MEMORY_FACTOR * size + MEMORY_OVERHEAD


def check_fits(size: int, available: MemoryProbe = available_memory, *, held: bool = False) -> None:
    """ImportRefused when a file of ``size`` bytes cannot be imported in the memory free now.

    ``held``: the file's bytes are already in memory, so they need no more room.
    """
    free = available()
    need = memory_needed(size) - (size if held else 0)
    if free is not None and need > free:
        raise ImportRefused(
            f"Importing this {size / MiB:.1f} MiB file needs up to {-(-need // MiB)} MiB "
            f"of memory and only {free // MiB} MiB is free; close other programs or "
            "import a smaller scan (nmap can write one file per target range). Nothing was "
            "imported."
        )


# An address, CIDR or dash range as nmap accepts it on its command line (names are left out:
# they cannot be told apart from file names).
_TARGETISH = re.compile(r"^[0-9A-Fa-f:.,\-/*]+$")


def read_capped(
    path: Path, max_bytes: int = MAX_IMPORT_BYTES, available: MemoryProbe = available_memory
) -> bytes:
    """The bytes of ``path``, or ImportRefused when it is missing, unreadable or too big.

    Too big is over ``max_bytes``, or more than the free memory can import: both are checked
    from the file's size before any of it is read.
    """
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= max_bytes:
                check_fits(size, available)
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
    available: MemoryProbe = available_memory,
) -> Report:
    """Parse nmap XML and save it as a new report; on ImportRefused nothing is stored."""
    if len(data) <= max_bytes:
        check_fits(len(data), available, held=True)
    report = parse_report(
        data,
        report_id=new_id("rep"),
        source=f"import: {visible_controls(filename)}"[:200],
        owner=owner,
        max_bytes=max_bytes,
    )
    if not report.targets:
        report = replace(report, targets=targets_from_args(report.args))
    store.save_report(report)
    log.info("imported %s as %s (%d hosts)", filename, report.id, len(report.hosts))
    return report
