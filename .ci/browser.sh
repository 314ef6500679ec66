#!/usr/bin/env bash
# Install the real browser the console and e-mail rendering tests drive (Debian's chromium),
# if it is missing.  Idempotent; needs root (CI and the dev machines run as root).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium is installed: $(chromium --version 2>/dev/null || echo unknown version)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "chromium is missing and this is not root: install Debian's chromium package for the browser tests" >&2
    exit 1
fi
echo "installing chromium (Debian package)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-noto-core fonts-noto-cjk >/dev/null
chromium --version
