#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: kernel and every plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_browser.sh  # Chromium for the browser test of being serve (skips without it)
exec .venv/bin/python -m pytest -q "$@"
