import torch

from being_kernel.api import Frame, Motion, Placement, head_poses
from being_kernel.testing import conformance_suite

TestCompositor = conformance_suite("torso", "plain", {"size": [96, 96]})


def test_the_shadow_follows_the_yaw() -> None:
    from being_torso_plain.model import PlainTorso
    from being_torso_plain.spec import PlainConfig

    torso = PlainTorso(PlainConfig(size=(96, 96)))
    head = torch.zeros(32, 32, 4)
    head[8:24, 8:24] = torch.tensor([0.5, 0.4, 0.3, 1.0])
    motion = Motion.zeros(2, 0)
    motion.global_rot[1, 1] = 0.5  # the second frame looks to the side
    frames = [Frame(head, i, i / 25, placement=Placement((16.0, 30.0), 100.0), head=pose)
              for i, pose in enumerate(head_poses(motion, None))]
    a, b = (f.image.mean(-1) for f in torso.composite(frames))
    assert not torch.equal(a, b)  # same head, other yaw: the shadow moved
    assert torch.equal(a[:, :40], b[:, :40])  # left of the head nothing changed
