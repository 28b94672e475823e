"""Finding the nmap binary and its version, with install advice when it is missing."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass

INSTALL_HINT_LINUX = "sudo apt-get install -y nmap"
INSTALL_HINT_MAC = "brew install nmap"


def install_hint() -> str:
    """The command that installs nmap on this kind of machine."""
    return INSTALL_HINT_MAC if platform.system() == "Darwin" else INSTALL_HINT_LINUX


@dataclass(frozen=True)
class NmapInfo:
    """Where nmap is and which version it reports."""

    path: str
    version: str


def minimal_env() -> dict[str, str]:
    """The environment every child process gets: no secrets, only what nmap needs to run."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    home = os.environ.get("HOME")
    if home:
        env["HOME"] = home
    return env


def find_nmap() -> NmapInfo | None:
    """The nmap binary on PATH and its version, or None when it is not installed."""
    path = shutil.which("nmap")
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            env=minimal_env(),
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Nmap version (\S+)", out)
    return NmapInfo(path=path, version=m.group(1) if m else "unknown")


def is_root() -> bool:
    """Whether raw-socket profiles (SYN, OS detection, UDP) can run."""
    return hasattr(os, "geteuid") and os.geteuid() == 0
