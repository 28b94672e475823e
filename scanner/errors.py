"""Scanner errors. Pages and command lines catch ScanError and show its message.

Exceptions::

    ScanError               base class
    ├── TargetRefused       a target, port spec or profile was refused; nmap was not started
    ├── NmapMissing         the nmap binary is not installed
    ├── ScanTimeout         the job passed its wall-clock limit; nmap was killed
    ├── ScanCancelled       the job was cancelled; nmap was killed
    ├── ScanFailed          nmap exited with an error (details in the log, not the message)
    └── ImportRefused       an uploaded file is not usable nmap XML; nothing was stored
"""

from __future__ import annotations


class ScanError(Exception):
    """Base class of every scanner failure; its message is safe to show to the user."""


class TargetRefused(ScanError):
    """Input was refused before any argv existed."""


class NmapMissing(ScanError):
    """nmap is not installed."""


class ScanTimeout(ScanError):
    """The scan passed its time limit."""


class ScanCancelled(ScanError):
    """The scan was cancelled."""


class ScanFailed(ScanError):
    """nmap failed; stderr is in the log only."""


class ImportRefused(ScanError):
    """A file was refused for import; the message never echoes its contents."""
