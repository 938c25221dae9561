#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests of `being serve` (headless, plays H.264 and VP8).
# Does nothing when a chromium is already on PATH; without root (or sudo) it says what to run.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: no apt-get here; install Chromium yourself to run the browser tests" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "install_browser: run 'sudo apt-get install chromium' to run the browser tests (they skip without it)" >&2
  exit 0
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "install_browser: $(chromium --version)"
