"""Worker errors, part of the scanner's hierarchy so pages and command lines show them as such.

Exceptions::

    ScanError (scanner.errors)
    ├── TargetRefused
    │   └── NoWorker            no live worker's scope holds a target; nothing was queued
    └── BrokerUnavailable       the Redis broker does not answer; nothing was queued
"""

from __future__ import annotations

from scanner.errors import ScanError, TargetRefused


class NoWorker(TargetRefused):
    """No live worker can take the scan; the message names the target and the sites."""


class BrokerUnavailable(ScanError):
    """The broker could not be reached; nothing was recorded or queued."""
