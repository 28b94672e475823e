#!/usr/bin/env bash
# Install a Debian package when root; otherwise print the exact command and fail.
# usage: apt-install.sh COMMAND-OR-/ABSOLUTE/FILE PACKAGE
set -euo pipefail
cmd="$1"; pkg="$2"
present() { if [[ "$cmd" == /* ]]; then [ -e "$cmd" ]; else command -v "$cmd" >/dev/null 2>&1; fi; }
if present; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ScanScribe needs '$cmd', which is not installed." >&2
    echo "Install it with:  sudo apt-get install -y $pkg   (macOS: brew install $pkg)" >&2
    exit 1
fi
stamp=.stamps/apt-updated
mkdir -p .stamps
if [ ! -f "$stamp" ]; then
    apt-get update -qq
    touch "$stamp"
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
present
