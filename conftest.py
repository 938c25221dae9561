"""Repository-wide pytest set-up: tests marked ``gpu`` skip without CUDA, tests marked
``shared_data`` skip without ../shared/data; it applies to tests/ and every plugin's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):  # noqa: ANN001 - pytest hook
    import torch

    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_data = pytest.mark.skip(reason=f"needs {SHARED_DATA}")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "shared_data" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(skip_data)
