#!/usr/bin/env bash
# Set up Being in ./.venv: the kernel and every plugin under plugins/, editable, with test tools.
# Re-running is cheap. PYTHON picks the interpreter (3.10+); BEING_TORCH picks the torch to
# install when none is present (GPU users: install your CUDA build of torch first).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
. .venv/bin/activate
python -c "import torch" 2>/dev/null || python -m pip install -q "${BEING_TORCH:-torch==2.13.0}"
plugins=()
for dir in plugins/*/; do
  [ -f "$dir/pyproject.toml" ] && plugins+=(-e "$dir")
done
python -m pip install -q -e ".[test]" "${plugins[@]}"
echo "being is installed in .venv: run '.venv/bin/being --help'"
