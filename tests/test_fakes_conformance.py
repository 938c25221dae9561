"""The testing kit's fakes pass the conformance suite they ship with (found by entry point)."""

from being_kernel.testing import conformance_suite

TestFakeAudio = conformance_suite("audio", "fake")
TestFakeAudio30 = conformance_suite("audio", "fake", {"fps": 30000 / 1001, "sample_rate": 22050, "n_expression": 5})
TestFakeAvatar = conformance_suite("avatar", "fake")
TestFakeTorso = conformance_suite("torso", "fake", {"size": [200, 120]})
