"""The kernel's conformance suites on the restorer: the compositor (a random restorer of the trained
layout, written once at import: the suite takes its config when the class is made) and the trainer
(interrupt and resume, atomic export, typed summary) on a small full-frame synthetic set."""

import tempfile
from pathlib import Path

from being_kernel.testing import conformance_suite, trainer_conformance_suite
from being_torso_restorer.spec import SPEC
from being_torso_restorer.testing import random_restorer

_RESTORER = str(random_restorer(Path(tempfile.mkdtemp(prefix="being-restorer-")) / "restorer", size=64))


def _full_frame(root: Path) -> Path:
    from being_kernel.datasets import make_synthetic

    return make_synthetic(root / "ff", size=64, frames=16, test_frames=4, supersample=1, full_frame=True, progress=False)


TestConformanceRestorer = conformance_suite("torso", config={"path": _RESTORER, "device": "cpu"}, spec=SPEC)
TestTrainerConformanceRestorer = trainer_conformance_suite(
    "torso", "restorer", {"steps": 6, "batch_frames": 2, "width": 8, "lpips": "off", "device": "cpu",
                          "checkpoint_every": 2}, dataset=_full_frame)
