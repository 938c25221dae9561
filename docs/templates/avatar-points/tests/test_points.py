from being_kernel.testing import conformance_suite, trainer_conformance_suite

TestRenderer = conformance_suite("avatar", "points", {"size": [64, 64]})
TestTrainer = trainer_conformance_suite("avatar", "points", {"steps": 6, "batch_frames": 2, "device": "cpu",
                                                            "lpips": "off", "point_size": 0.006})
