"""The kernel's conformance suite, on the splatting renderer found through its entry point
(``pip install -e plugins/avatar_splatting --no-deps`` first), at a small size to stay fast."""

from being_kernel.testing import conformance_suite

TestConformanceSplatting = conformance_suite("avatar", "splatting", {"size": [96, 96], "device": "cpu", "batch_frames": 3})
