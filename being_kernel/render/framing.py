"""What every Gaussian head renderer shares around the rasterizer: the camera stored in an avatar
directory (a JSON record), scaled to the output size or framed like a portrait, rasterized images
turned into the kernel's output :class:`~being_kernel.types.Frame`s, and the chunked batch, view
and stream calls of a renderer whose frames depend only on their own motion frame.

A camera record is ``{"width", "height", "K": 3x3, "R": 3x3, "t": 3}`` as plain lists, OpenCV
convention (x right, y down, z forward; ``R, t`` world -> camera).
"""

from __future__ import annotations

from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor

import torch

from ..cameras import Cameras
from ..contracts import FlameRenderer, FramewiseRenderStream, Stream
from ..types import Frame, Motion, Placement, head_poses
from .gaussians import GaussianImages

#: Portrait framing: the image scale at the neck base, as a multiple of the image height (px/m = this x H).
PORTRAIT_PX_PER_METRE_PER_PX = 2.4
#: Portrait framing: where the neck base lands, as a fraction of the image height (the head fills the image above it).
PORTRAIT_ANCHOR_Y = 0.92
#: Alpha below which a pixel counts as empty (depth inf): gsplat's per-Gaussian alpha threshold.
EMPTY_ALPHA = 1.0 / 255.0
#: Frames per call of a Gaussian renderer whose config leaves ``batch_frames`` unset, by device type.
#: CUDA: skinning and posing cost a few hundred small kernel launches per call whatever its size, so
#: large batches amortise them (docs/benchmarks.md: batch sweep on the H100). CPU: one frame per call
#: on each of the renderer's worker threads; the binning's temporary tensors grow with the batch
#: (peak memory), and per frame the speed was the same as for 2 or 4 (2-core machine, 256²).
AUTO_BATCH_FRAMES = {"cuda": 64, "cpu": 1}


def auto_batch_frames(configured: int | None, device: torch.device) -> int:
    """``configured``, or when None the frames per call for ``device`` (AUTO_BATCH_FRAMES)."""
    return configured if configured is not None else AUTO_BATCH_FRAMES.get(device.type, AUTO_BATCH_FRAMES["cpu"])


#: Worker threads of a CPU render call: torch's thread count when this module was imported. Read
#: once, because the workers set torch's count to one, and torch keeps one count per process that
#: threads started later take up.
CPU_RENDER_WORKERS = max(1, torch.get_num_threads())


def _one_torch_thread() -> None:
    torch.set_num_threads(1)


def camera_for_size(camera: dict, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The camera record for an image of (width, height): scaled by height / its height (square
    pixels kept), re-centred horizontally. Returns R [3,3], t [3], K [3,3] (float32)."""
    w0, h0 = int(camera["width"]), int(camera["height"])
    K = torch.tensor(camera["K"], dtype=torch.float64)
    s = height / h0
    K[:2, :] *= s
    K[0, 2] += (width - w0 * s) / 2.0
    K[2] = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    return (torch.tensor(camera["R"], dtype=torch.float32), torch.tensor(camera["t"], dtype=torch.float32),
            K.float())


def framed_camera(R: torch.Tensor, t: torch.Tensor, root: torch.Tensor, width: int, height: int) -> dict:
    """The camera record with extrinsics ``R`` [3,3], ``t`` [3] and intrinsics that frame a head as a
    portrait: the neck base ``root`` [3] (world) projects to (width / 2, PORTRAIT_ANCHOR_Y x height)
    at PORTRAIT_PX_PER_METRE_PER_PX x height px/m, so torso compositors find the neck where they expect."""
    R, t, root = (torch.as_tensor(x, dtype=torch.float64) for x in (R, t, root))
    cam_root = R @ root + t
    f = PORTRAIT_PX_PER_METRE_PER_PX * height * float(cam_root[2])
    cx = width / 2.0 - f * float(cam_root[0] / cam_root[2])
    cy = PORTRAIT_ANCHOR_Y * height - f * float(cam_root[1] / cam_root[2])
    K = [[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]]
    return {"width": int(width), "height": int(height), "K": K, "R": R.tolist(), "t": t.tolist()}


def gaussian_frames(img: GaussianImages, roots: torch.Tensor, cams: Cameras, motion: Motion, first: int,
                    head_cameras: Cameras | None = None) -> list[Frame]:
    """Output frames ``first..first+n-1`` from rasterized images of ``motion`` ([n] frames).

    img: n images (background None, so rgb is premultiplied); roots [n, 3] the posed root joints
    (neck base) in world space; cams: the n cameras rendered through; head_cameras: the camera each
    frame reports in its HeadPose (default ``cams``; a renderer with one own camera passes it once).
    Frames: RGBA [H, W, 4] in [0, 1], expected depth (inf where alpha <= EMPTY_ALPHA), the Placement
    of the root joint (its projection, fx / its depth px/m) and the HeadPose."""
    n = motion.num_frames
    heads = head_poses(motion, cams if head_cameras is None else head_cameras)
    rgba = torch.cat([img.rgb, img.alpha], dim=-1).clamp_(0.0, 1.0)
    depth = torch.where(img.alpha[..., 0] > EMPTY_ALPHA, img.depth[..., 0], torch.full_like(img.depth[..., 0], float("inf")))
    anchor, anchor_z = cams.project(roots[:, None])
    anchor, anchor_z = anchor[:, 0].cpu().double(), anchor_z[:, 0].cpu().double()
    fx = cams.K[:, 0, 0].cpu().double()
    frames = []
    for i in range(n):
        place = Placement((float(anchor[i, 0]), float(anchor[i, 1])), float(fx[i] / anchor_z[i]))
        frames.append(Frame(rgba[i], first + i, (first + i) / motion.fps, depth[i], place, heads[i]))
    return frames


def tracked_portrait(cameras: Cameras, roots: torch.Tensor) -> dict:
    """The default view of an avatar trained on tracked frames: of ``cameras`` (T), the one that
    looks most squarely at the face (FLAME faces +z, so the camera's z axis, row 2 of R, should
    point along -z), framed by :func:`framed_camera` at the frames' size around that frame's root
    joint ``roots`` [T, 3]. A camera record."""
    k = int(torch.argmin(cameras.R[:, 2, 2]))
    return framed_camera(cameras.R[k].cpu(), cameras.t[k].cpu(), roots[k].cpu(), cameras.width, cameras.height)


class ChunkedHeadRenderer(FlameRenderer):
    """A FlameRenderer whose every frame depends only on its own motion frame, drawn
    ``batch_frames`` frames per call (``config.batch_frames``, or when that is None the device's
    AUTO_BATCH_FRAMES) through one camera of its own (``R``, ``t``, ``K``, set by the subclass for
    ``config.size``) or given cameras. A subclass sets those, ``device``, and implements
    ``render_chunk``; ``render``, ``render_views``, ``cameras`` and the stream (the batch call chunk
    by chunk, no latency) are here.

    On the CPU, ``render`` draws its chunks on ``workers`` threads at once (torch's thread count
    when the kernel was imported), each with one torch thread (threads started later in the
    process then default to one torch thread too; torch keeps a single count). Frames are
    independent, while the rasterizer's many small torch operations scale poorly across OpenMP
    threads and stall badly when another process holds a core (every operation ends at a barrier
    that waits for all). Its info's ``batch_frames`` is then ``batch_frames x workers``, what one
    call keeps busy."""

    _pool: ThreadPoolExecutor | None = None

    R: torch.Tensor  # [3, 3] world -> camera
    t: torch.Tensor  # [3]
    K: torch.Tensor  # [3, 3] for config.size
    device: torch.device

    @abstractmethod
    def render_chunk(self, motion: Motion, first: int, cams: Cameras | None = None) -> list[Frame]:
        """Frames ``first..`` of ``motion`` ([n] frames, on the device) through ``cams`` (n cameras;
        None: the renderer's own), under no_grad."""

    @property
    def batch_frames(self) -> int:
        """Frames per rasterize call."""
        return auto_batch_frames(self.config.batch_frames, self.device)

    @property
    def workers(self) -> int:
        """Threads ``render`` draws chunks on: CPU_RENDER_WORKERS on the CPU, 1 on a GPU."""
        return CPU_RENDER_WORKERS if self.device.type == "cpu" else 1

    @property
    def frames_per_call(self) -> int:
        """Frames one ``render`` call keeps busy: what the renderer reports as its info's batch_frames."""
        return self.batch_frames * self.workers

    def cameras(self, n: int) -> Cameras:
        w, h = self.config.size
        return Cameras(self.R.expand(n, 3, 3), self.t.expand(n, 3), self.K.expand(n, 3, 3), w, h)

    def render(self, motion: Motion, start_index: int = 0) -> list[Frame]:
        step = self.batch_frames
        starts = range(0, motion.num_frames, step)

        def chunk(a: int) -> list[Frame]:
            with torch.no_grad():
                return self.render_chunk(motion.slice(a, min(a + step, motion.num_frames)).to(self.device),
                                         start_index + a)

        if self.workers == 1 or len(starts) == 1:
            return [f for a in starts for f in chunk(a)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="being-render",
                                            initializer=_one_torch_thread)
        return [f for frames in self._pool.map(chunk, starts) for f in frames]

    def render_views(self, motion: Motion, cameras: Cameras) -> list[Frame]:
        if len(cameras) != motion.num_frames:
            raise ValueError(f"render_views: {len(cameras)} cameras for {motion.num_frames} motion frames")
        out: list[Frame] = []
        step = self.batch_frames
        cameras = cameras.to(self.device)
        with torch.no_grad():
            for a in range(0, motion.num_frames, step):
                b = min(a + step, motion.num_frames)
                out += self.render_chunk(motion.slice(a, b).to(self.device), a, cameras[a:b])
        return out

    def open_stream(self) -> Stream[Motion, list[Frame]]:
        return FramewiseRenderStream(self.render)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def check_backend(backend: str, device: torch.device, field: str = "backend") -> None:
    """ConfigError when the rasterizer ``backend`` cannot run on ``device`` (gsplat needs CUDA);
    ``field`` names the config field in the message (e.g. "fit.backend")."""
    if backend == "gsplat" and device.type != "cuda":
        from ..errors import ConfigError

        raise ConfigError(f'{field}: "gsplat" needs a CUDA device', hint='use backend "auto" or "cpu"')
