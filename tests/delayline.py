"""A delay line between two TUN devices: every packet read from one is written to the other
``delay`` seconds later. Stands in for ``tc netem delay`` on kernels built without netem.

usage: python -m tests.delayline TUN_A TUN_B DELAY_MS   (inside a network namespace; prints
"ready" once both devices exist, runs until stdin closes)
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import struct
import sys
import threading
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    """Create (or attach to) the TUN device ``name``; its file descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def carry(src: int, dst: int, delay: float) -> None:
    """Copy packets from ``src`` to ``dst``, each ``delay`` seconds after it arrived (in order)."""
    line: collections.deque[tuple[float, bytes]] = collections.deque()
    ready = threading.Condition()

    def send() -> None:
        while True:
            with ready:
                while not line:
                    ready.wait()
                due, packet = line[0]
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # a constant delay: the head is always the first due
            with ready:
                line.popleft()
            with contextlib.suppress(OSError):  # a refused packet is dropped, as on a wire
                os.write(dst, packet)

    threading.Thread(target=send, daemon=True).start()
    while True:
        packet = os.read(src, 65536)
        with ready:
            line.append((time.monotonic() + delay, packet))
            ready.notify()


def main() -> None:
    """Open both devices, say ready, carry both ways until stdin closes."""
    a, b, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    fa, fb = open_tun(a), open_tun(b)
    for src, dst in ((fa, fb), (fb, fa)):
        threading.Thread(target=carry, args=(src, dst, delay_ms / 1000), daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
