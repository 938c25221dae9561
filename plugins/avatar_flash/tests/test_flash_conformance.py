"""The kernel's conformance suites on the flash plugin found through its entry point: the renderer
(on an untrained avatar whose network moves the Gaussians; CPU, and CUDA with gsplat marked gpu)
and the trainer (atomic output, exact resume after SIGINT, typed summary, PSNR agreeing with
being eval)."""

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
from flash_helpers import random_avatar

from being_kernel.testing import conformance_suite, trainer_conformance_suite

_ROOT = Path(tempfile.mkdtemp(prefix="flash-conformance-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
AVATAR = str(random_avatar(_ROOT / "avatar"))

TestConformanceFlash = conformance_suite("avatar", "flash", {"path": AVATAR, "size": [64, 64], "device": "cpu",
                                                             "batch_frames": 3})

# gsplat's float sums depend on how frames are batched (see the splatting plugin's suite)
TestConformanceFlashCuda = pytest.mark.gpu(
    conformance_suite("avatar", "flash", {"path": AVATAR, "size": [96, 96], "device": "cuda", "backend": "gsplat",
                                          "batch_frames": 3, "precision": "fp32"}, atol=1e-3))

TestTrainerConformanceFlash = trainer_conformance_suite(
    "avatar", "flash", {"steps": 8, "uv_size": 32, "sh_degree": 1, "sh_interval": 4, "batch_frames": 2,
                        "preview_every": 1000, "checkpoint_every": 1000, "device": "cpu", "backend": "cpu",
                        "lpips": "off"}, interrupt_at=5, plugin_config={"backend": "cpu", "device": "cpu"})
