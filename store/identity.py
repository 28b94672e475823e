"""Which machine and which boot this process runs on, so recovery only touches its own records.

Several machines may share one Firestore project. A process id means something only on the
machine, and in the boot, that issued it: recovery on machine B must never judge (or signal) a
job of machine A by a pid that happens to exist on B, and after a reboot every recorded pid is
dead even when the same number is in use again.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from config import ConfigError

log = logging.getLogger(__name__)

MACHINE_ENV = "SCANSCRIBE_MACHINE_ID"
MACHINE_FILE = Path("/etc/machine-id")
BOOT_FILE = Path("/proc/sys/kernel/random/boot_id")
# Kept beside the SQLite file where the system has no machine id (a container, macOS).
FALLBACK_NAME = "scanscribe-machine-id"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class HostIdentity:
    """A machine id that survives reboots and a boot id that changes with each boot."""

    machine_id: str
    boot_id: str

    def same_machine(self, machine_id: str) -> bool:
        """Whether a record written on ``machine_id`` was written on this machine.

        Records from before machine ids were kept (empty id) count as this machine's, as every
        writer then was local.
        """
        return not machine_id or machine_id == self.machine_id

    def same_boot(self, machine_id: str, boot_id: str) -> bool:
        """Whether a record's process ids still mean something here (same machine and boot)."""
        return self.same_machine(machine_id) and (not boot_id or boot_id == self.boot_id)


def _read_id(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def machine_id(
    state_dir: Path, environ: Mapping[str, str] | None = None, system_file: Path = MACHINE_FILE
) -> str:
    """This machine's stable id: SCANSCRIBE_MACHINE_ID, the system's (/etc/machine-id), or one
    kept in ``state_dir`` beside the SQLite file (created on first use)."""
    env = os.environ if environ is None else environ
    override = env.get(MACHINE_ENV, "").strip()
    if override:
        if not _VALID.match(override):
            raise ConfigError(
                f"{MACHINE_ENV}: {override[:80]!r} is not a machine id. It accepts 1 to 64 "
                "letters, digits, dots, dashes, underscores or colons."
            )
        return override
    system = _read_id(system_file)
    if _VALID.match(system):
        return system
    kept = state_dir / FALLBACK_NAME
    existing = _read_id(kept)
    if _VALID.match(existing):
        return existing
    generated = uuid.uuid4().hex
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: when two processes start at once, the first id written wins for both.
        fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return _read_id(kept) or generated
    except OSError as exc:
        log.warning("cannot keep a machine id in %s (%s); using one for this run", kept, exc)
        return generated
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(generated + "\n")
    return generated


def boot_id() -> str:
    """The kernel's id of the current boot; empty where the system does not say."""
    found = _read_id(BOOT_FILE)
    return found if _VALID.match(found) else ""


def this_host(state_dir: Path, environ: Mapping[str, str] | None = None) -> HostIdentity:
    """The identity of the machine and boot this process runs on."""
    return HostIdentity(machine_id(state_dir, environ), boot_id())
