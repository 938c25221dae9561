"""CUDA graphs for the fixed-shape part of a render call.

Posing a head (skinning, the Gaussians' triangle frames, quaternions) is a few hundred small
kernels whose launch cost, not their arithmetic, sets the time of a one-frame render on a GPU
(docs/benchmarks.md: "one frame per call"). Captured once per input shape as a CUDA graph, the
whole sequence is one launch. The rasterizer itself is not captured: its work lists depend on the
data (gsplat sizes its tile intersections on the host).
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import torch

Tensors = tuple[torch.Tensor, ...]


class GraphedCall:
    """``fn(*tensors) -> tuple of tensors``, replayed from a CUDA graph captured for each distinct
    set of input shapes and dtypes (at most ``max_graphs``; more shapes run ``fn`` eagerly).

    ``fn`` must be a pure function of its tensor inputs (and of state that does not change between
    calls, e.g. model weights) with no host synchronisation and no host-to-device copies. The
    outputs are the graph's own buffers: they are overwritten by the next call, so use them (or
    copy them) before calling again. Inputs on the CPU are copied to the graph's device buffers,
    which is also how new motion gets in. If a capture fails, a warning says why and every later
    call runs ``fn`` eagerly: a graph is a speed-up, never a new way to fail. One caller at a time:
    concurrent calls would share the buffers.
    """

    def __init__(self, fn: Callable[..., Sequence[torch.Tensor]], device: torch.device, max_graphs: int = 8) -> None:
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {device}")
        self.fn, self.device, self.max_graphs = fn, device, max_graphs
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, Tensors, Tensors]] = {}
        self.failed: str | None = None  # why capturing failed, if it did

    def __call__(self, *inputs: torch.Tensor) -> Tensors:
        key = tuple((tuple(x.shape), x.dtype) for x in inputs)
        entry = self._graphs.get(key)
        if entry is None:
            if self.failed or len(self._graphs) >= self.max_graphs:
                return tuple(self.fn(*(x.to(self.device) for x in inputs)))
            try:
                entry = self._graphs[key] = self._capture(inputs)
            except RuntimeError as exc:
                self.failed = str(exc).splitlines()[0]
                warnings.warn(f"CUDA graph capture failed, running eagerly: {self.failed}", RuntimeWarning, stacklevel=2)
                torch.cuda.synchronize(self.device)
                return tuple(self.fn(*(x.to(self.device) for x in inputs)))
        graph, static_in, static_out = entry
        for buffer, x in zip(static_in, inputs):
            buffer.copy_(x, non_blocking=True)
        graph.replay()
        return static_out

    def _capture(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.cuda.CUDAGraph, Tensors, Tensors]:
        static_in = tuple(x.to(self.device, copy=True) for x in inputs)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up off the capture: lazy allocations and library handles
            self.fn(*static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = tuple(self.fn(*static_in))
        return graph, static_in, static_out
