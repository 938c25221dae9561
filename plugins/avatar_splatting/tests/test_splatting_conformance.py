"""The kernel's conformance suite, on the splatting renderer found through its entry point
(``pip install -e plugins/avatar_splatting --no-deps`` first), at a small size to stay fast: on the
CPU renderer, and on CUDA with gsplat (marked gpu: skipped without one)."""

import pytest

from being_kernel.testing import conformance_suite

TestConformanceSplatting = conformance_suite("avatar", "splatting", {"size": [96, 96], "device": "cpu", "batch_frames": 3})

# gsplat's float sums depend on how frames are batched: on the H200 a streamed chunk differed from
# the batch by 1.2e-4 at one pixel in 36864, so stream-vs-batch is held to 1e-3 there
TestConformanceSplattingCuda = pytest.mark.gpu(
    conformance_suite("avatar", "splatting", {"size": [96, 96], "device": "cuda", "backend": "gsplat", "batch_frames": 3},
                      atol=1e-3))
