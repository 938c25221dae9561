"""FlashAvatar's deformation network: from a Gaussian's canonical position (positional-encoded)
and the frame's expression condition to offsets of its position, rotation and scale.

Facts from the paper and public code (Xiang et al., CVPR 2024): the input is the canonical 3-D
position at the Gaussian's texel (the rest mesh, shape applied), encoded as itself plus sin and cos
at 8 octave frequencies (2^0 .. 2^7), concatenated with the condition: expression coefficients,
jaw and both eye rotations as 6-D rotations (the first two rows of the matrix, as the tracker
stores them) and the two eyelids. Six ReLU layers of 256, a linear output of 10, tanh-bounded:
position offset (3, metres, in the head's frame), a rotation delta (4: w = exp(.), then x, y, z,
composed after the base rotation) and a scale factor (3: exp(.)).

One change from the public code: the output layer starts at zero, so training starts from the
mesh (offsets 0, identity rotation, factor 1) instead of from the random few-centimetre offsets a
default-initialised layer gives.

The first layer is split into its position part (one [N, 256] product, computed once per call, or
once per avatar at inference: ``DeformNet.position_features``) and its condition part ([T, 256]
per frame), so T frames cost one broadcast add instead of a [T, N, 51 + C] input.
"""

from __future__ import annotations

import torch

from being_kernel.api import Motion
from being_kernel.head import axis_angle_to_matrix

#: Positional-encoding octaves (the public code's pts_freq).
PE_FREQUENCIES = 8
HIDDEN, LAYERS = 256, 6
#: Outputs per Gaussian: position offset 3, rotation delta 4, scale factor 3.
OUTPUTS = 10


def encode_positions(x: torch.Tensor, frequencies: int = PE_FREQUENCIES) -> torch.Tensor:
    """[..., 3] -> [..., 3 + 6 F]: x, then sin(2^k x), cos(2^k x) for k = 0..F-1 (each 3 wide)."""
    parts = [x]
    for k in range(frequencies):
        parts += [torch.sin(x * 2.0**k), torch.cos(x * 2.0**k)]
    return torch.cat(parts, dim=-1)


def condition_width(n_expression: int) -> int:
    """Condition size: expression + jaw 6-D + eyes 2 x 6-D + eyelids 2."""
    return n_expression + 6 + 12 + 2


def condition(motion: Motion, n_expression: int) -> torch.Tensor:
    """[T, condition_width(E)]: the motion's expression (first E coefficients, zero-padded), jaw and
    eye rotations as 6-D (matrix rows 0 and 1) and eyelids. Pose-only motion gives expression 0."""
    t = motion.num_frames
    exp = motion.expression[:, :n_expression]
    if exp.shape[1] < n_expression:
        exp = torch.cat([exp, exp.new_zeros(t, n_expression - exp.shape[1])], dim=1)
    rot = axis_angle_to_matrix(torch.stack([motion.jaw, motion.eyes[:, :3], motion.eyes[:, 3:]], dim=1))  # [T, 3, 3, 3]
    six = rot[:, :, :2, :].reshape(t, 18)
    return torch.cat([exp, six, motion.eyelids], dim=1)


class DeformNet(torch.nn.Module):
    """MLP (3 + 6 F) + C -> HIDDEN x LAYERS (ReLU) -> OUTPUTS (tanh).

    Parameters: ``first_position`` [HIDDEN, 3 + 6F], ``first_condition`` [HIDDEN, C], ``first_bias``
    [HIDDEN] (the first layer, split), ``hidden.{i}`` Linear(HIDDEN, HIDDEN) for i < LAYERS - 1,
    ``out`` Linear(HIDDEN, OUTPUTS)."""

    def __init__(self, condition_size: int, frequencies: int = PE_FREQUENCIES, hidden: int = HIDDEN,
                 layers: int = LAYERS, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.frequencies = frequencies
        width = 3 + 6 * frequencies
        # PyTorch's default Linear initialisation, drawn from the given generator (seeded runs)
        bound = (width + condition_size) ** -0.5
        with torch.no_grad():
            w = (torch.rand(hidden, width + condition_size, generator=generator) * 2 - 1) * bound
            b = (torch.rand(hidden, generator=generator) * 2 - 1) * bound
        self.first_position = torch.nn.Parameter(w[:, :width].contiguous())
        self.first_condition = torch.nn.Parameter(w[:, width:].contiguous())
        self.first_bias = torch.nn.Parameter(b)
        self.hidden = torch.nn.ModuleList(torch.nn.Linear(hidden, hidden) for _ in range(layers - 1))
        with torch.no_grad():
            for layer in self.hidden:
                layer.weight.copy_((torch.rand(layer.weight.shape, generator=generator) * 2 - 1) * hidden**-0.5)
                layer.bias.copy_((torch.rand(layer.bias.shape, generator=generator) * 2 - 1) * hidden**-0.5)
        self.out = torch.nn.Linear(hidden, OUTPUTS)
        torch.nn.init.zeros_(self.out.weight)
        torch.nn.init.zeros_(self.out.bias)

    def position_features(self, canonical: torch.Tensor) -> torch.Tensor:
        """Canonical positions [N, 3] -> the first layer's position part plus bias [N, HIDDEN]."""
        return encode_positions(canonical, self.frequencies) @ self.first_position.T + self.first_bias

    def forward(self, features: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """features [N, HIDDEN] (``position_features``), cond [T, C] -> raw outputs [T, N, OUTPUTS] in (-1, 1)."""
        h = torch.relu(features[None] + (cond @ self.first_condition.T)[:, None])
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return torch.tanh(self.out(h))


def split_outputs(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw outputs [T, N, 10] -> (offset [T, N, 3] metres, rotation delta [T, N, 4] wxyz (not unit),
    scale factor [T, N, 3])."""
    dq = torch.cat([torch.exp(d[..., 3:4]), d[..., 4:7]], dim=-1)
    return d[..., :3], dq, torch.exp(d[..., 7:10])
