"""The report of a prepared clip: where the tracking is bad, and pictures a person can check.

A landmark fit can fail quietly: a frame with no face, a frame where the pose flips for one frame
(a mirrored or mis-detected face), a frame whose landmarks the mesh cannot reach. Training on
those frames teaches the avatar the error, so this module finds them (:func:`detect_jumps`),
mends them (:func:`interpolate_frames`, rotations by slerp) and writes what a person needs to
trust the rest: ``quality.json`` (per-frame reprojection error, the bad frames and what was done
with them), ``tracking.png`` (pose, jaw, expression and error over time, bad frames shaded) and
``overlay.mp4`` (the fitted mesh drawn over the video, with its audio).

Conventions: T frames; rotations R [T, 3, 3] are the per-frame camera extrinsics of
``tracking.py`` (X_cam = R x + t, R = diag(1, -1, -1) @ R_head for a head facing +z); pixel
coordinates x right, y down, the centre of pixel (i, j) at (j + 0.5, i + 0.5). Files are written
atomically: a hidden temporary file beside the target, renamed onto it when complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from being_kernel.api import Cameras
from being_kernel.head import vertex_normals
from being_kernel.media import Mp4Writer
from being_kernel.render import render_mesh

R_FRONT = np.diag([1.0, -1.0, -1.0])
TINT = (0.55, 0.75, 1.0)  # light blue mesh colour, times the headlight shade
PLOT_INCHES, PLOT_DPI = (10.0, 9.0), 100  # tracking.png is 1000 x 900 pixels
GREEN, RED = (0, 255, 0), (255, 0, 0)


def _turn_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees of the rotation between a [N, 3, 3] and b [N, 3, 3] -> [N]."""
    cos = (np.einsum("nij,nij->n", a, b) - 1.0) / 2.0  # trace(a b^T) = 1 + 2 cos(angle)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def detect_jumps(R: np.ndarray, reprojection_px: np.ndarray, *, max_turn_deg: float = 12.0,
                 outlier_factor: float = 3.0, min_px: float = 4.0) -> np.ndarray:
    """Frames where the fit jumped: R [T, 3, 3], reprojection_px [T] (NaN: no face) -> bool [T].

    A jump is a one-frame spike (the rotation to the previous AND to the next frame both exceed
    ``max_turn_deg``; the first and last frame have one neighbour, which decides) or a reprojection
    error above max(outlier_factor x the median error, min_px). Frames without a face are never
    jumps, and neither are they neighbours: a face frame is compared with the nearest face frames,
    so the arbitrary pose of a failed frame cannot make its neighbours look like spikes.
    """
    R, err = np.asarray(R, np.float64), np.asarray(reprojection_px, np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3) or err.shape != (len(R),):
        raise ValueError(f"detect_jumps: R [T, 3, 3] and reprojection_px [T], got {R.shape}, {err.shape}")
    face = np.isfinite(err)
    jumps = np.zeros(len(R), bool)
    ids = np.flatnonzero(face)
    if len(ids) >= 2:
        turn = _turn_deg(R[ids[1:]], R[ids[:-1]]) > max_turn_deg  # [n - 1]: between face frames k, k + 1
        before = np.concatenate([[True], turn])  # the first frame has no previous neighbour
        after = np.concatenate([turn, [True]])
        jumps[ids] = before & after
    if len(ids):
        limit = max(outlier_factor * float(np.median(err[face])), min_px)
        jumps |= face & (np.where(face, err, 0.0) > limit)
    return jumps


def interpolate_frames(values: dict[str, np.ndarray], bad: np.ndarray) -> dict[str, np.ndarray]:
    """Replace the ``bad`` [T] frames of each array [T, ...] by interpolation between good frames.

    Linear between the nearest good frames on either side, held at the first/last good frame
    towards the ends. ``"R"`` ([T, 3, 3] rotation matrices) is interpolated by slerp, so the result
    stays a rotation. Good frames are returned unchanged (copies); ValueError if no frame is good.
    """
    bad = np.asarray(bad, bool)
    good = np.flatnonzero(~bad)
    if len(good) == 0:
        raise ValueError("interpolate_frames: no good frame to interpolate from")
    miss = np.flatnonzero(bad)
    pos = np.searchsorted(good, miss)  # good[pos - 1] < miss < good[pos]
    lo, hi = good[np.clip(pos - 1, 0, len(good) - 1)], good[np.clip(pos, 0, len(good) - 1)]
    w = np.where(hi > lo, (miss - lo) / np.maximum(hi - lo, 1), 0.0)  # 0 at the ends: hold lo (= hi)
    out = {}
    for key, v in values.items():
        v = np.array(v, copy=True)
        if len(v) != len(bad):
            raise ValueError(f"interpolate_frames: '{key}' has {len(v)} frames, bad has {len(bad)}")
        if len(miss) and key == "R":
            if len(good) == 1:
                v[miss] = v[good[0]]
            else:
                slerp = Slerp(good.astype(np.float64), Rotation.from_matrix(v[good].astype(np.float64)))
                v[miss] = slerp(np.clip(miss, good[0], good[-1]).astype(np.float64)).as_matrix()
        elif len(miss):
            ww = w.reshape((-1,) + (1,) * (v.ndim - 1))
            v[miss] = (1.0 - ww) * v[lo] + ww * v[hi]
        out[key] = v
    return out


def head_euler_deg(R: np.ndarray) -> np.ndarray:
    """Extrinsics R [T, 3, 3] (R = diag(1, -1, -1) @ R_head) -> [T, 3] yaw, pitch, roll in degrees.

    R_head = Ry(yaw) Rx(pitch) Rz(roll) in the head's frame (x to its left, which is image right;
    y up; z out of the face, towards the camera at rest). Positive yaw turns the face towards image
    right, positive pitch tilts it down (chin down), positive roll turns its x axis up in the image
    (counter-clockwise as seen in the image). 0, 0, 0 is the head looking straight into the camera.
    """
    R = np.asarray(R, np.float64)
    return Rotation.from_matrix(R_FRONT.T @ R).as_euler("YXZ", degrees=True)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[first, last] frame of each run of True in mask [T]."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def _replace_into(path: Path, write) -> Path:  # noqa: ANN001 - write(tmp: Path) -> None
    """Run ``write`` on a hidden temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def plot_tracking(path: Path, fps: float, *, euler_deg: np.ndarray, translation: np.ndarray, jaw: np.ndarray,
                  expression: np.ndarray, reprojection_px: np.ndarray, failed: np.ndarray,
                  jumps: np.ndarray) -> Path:
    """A 1000 x 900 PNG of four panels over time (s): head yaw/pitch/roll (deg, euler_deg [T, 3]);
    translation x/y/z (translation [T, 3] in m, plotted in mm about the clip mean); jaw opening
    (jaw [T, 3], jaw[:, 0] in rad) and |expression| (expression [T, E]); reprojection error (px,
    [T]). Frames in ``failed`` [T] (no face) are shaded grey and ``jumps`` [T] red on every panel."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display; PNG through Agg

    euler_deg = np.asarray(euler_deg, np.float64)
    n = len(euler_deg)
    time = np.arange(n) / fps
    fig = Figure(figsize=PLOT_INCHES, dpi=PLOT_DPI, layout="constrained")
    axes = fig.subplots(4, 1, sharex=True)
    trans = np.asarray(translation, np.float64)
    trans_mm = 1000.0 * (trans - np.nanmean(trans, axis=0))
    expr = np.asarray(expression, np.float64).reshape(n, -1)
    curves = [("head rotation (deg)", [(euler_deg[:, k], name) for k, name in enumerate(("yaw", "pitch", "roll"))]),
              ("translation - mean (mm)", [(trans_mm[:, k], name) for k, name in enumerate("xyz")]),
              ("jaw (rad), |expression|", [(np.asarray(jaw)[:, 0], "jaw opening"),
                                          (np.linalg.norm(expr, axis=1), "|expression|")]),
              ("reprojection (px)", [(reprojection_px, "landmarks")])]
    for ax, (label, lines) in zip(axes, curves):
        for mask, colour in ((failed, "0.6"), (jumps, "red")):
            for a, b in _runs(np.asarray(mask, bool)):
                ax.axvspan((a - 0.5) / fps, (b + 0.5) / fps, color=colour, alpha=0.3, linewidth=0)
        for y, name in lines:
            ax.plot(time, y, linewidth=1.0, label=name)
        ax.set_ylabel(label)
        ax.legend(loc="upper right", fontsize="small")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s); grey: no face, red: jump")
    return _replace_into(path, lambda tmp: fig.savefig(tmp, format="png"))


def _dots(image: np.ndarray, points: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Set the 2 x 2 pixels nearest each point [L, 2] (px) to ``colour``; skips NaN and off-image."""
    h, w = image.shape[:2]
    p = points[np.isfinite(points).all(1)]
    x0, y0 = np.floor(p[:, 0] - 0.5).astype(np.int64), np.floor(p[:, 1] - 0.5).astype(np.int64)
    for dx in (0, 1):
        for dy in (0, 1):
            x, y = x0 + dx, y0 + dy
            ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            image[y[ok], x[ok]] = colour


def write_overlay(path: Path, frames: Iterable[np.ndarray], vertices: torch.Tensor, faces: torch.Tensor,
                  cameras: Cameras, fps: float, *, landmarks: np.ndarray | None = None,
                  fitted: np.ndarray | None = None, audio: tuple[np.ndarray, int] | None = None,
                  alpha: float = 0.45, batch: int = 8) -> Path:
    """An H.264 MP4 of the fitted mesh over the video, with ``audio`` (samples [N] float32, rate).

    frames: T RGB uint8 [H, W, 3] (the cameras' size); vertices [T, V, 3] (model space, on the
    device to render on); faces [F, 3]; cameras: T views. The mesh is lit by a headlight (shade
    0.35 + 0.65 max(0, n . -view) per vertex, tinted light blue) and blended with ``alpha`` where
    it covers the frame; ``landmarks`` [T, L, 2] (detected) are drawn green, ``fitted`` [T, L, 2]
    red. An odd width or height is padded by one pixel (the last column/row repeated), since
    H.264 (yuv420p) needs even sizes. render_mesh takes one vertex colour set [V, 3] per call, so
    within a batch of ``batch`` frames (normals and shading computed together) each frame is one call.
    """
    n, device = vertices.shape[0], vertices.device
    if len(cameras) != n:
        raise ValueError(f"write_overlay: {n} frames of vertices for {len(cameras)} cameras")
    h, w = cameras.height, cameras.width
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    tint = torch.tensor(TINT, dtype=vertices.dtype, device=device)
    samples, rate = audio if audio is not None else (None, None)
    done, source = 0, iter(frames)
    with Mp4Writer(path, fps, (w + w % 2, h + h % 2), audio=samples, audio_rate=rate, preset="veryfast") as out:
        while chunk := list(islice(source, batch)):
            if done + len(chunk) > n:
                raise ValueError(f"write_overlay: more frames than the {n} fitted ones")
            cams = cameras[done:done + len(chunk)].to(device)
            verts = vertices[done:done + len(chunk)]
            R, t = cams.R.to(verts.dtype), cams.t.to(verts.dtype)
            cam_pts = verts @ R.transpose(1, 2) + t[:, None]  # [B, V, 3]
            normals = vertex_normals(verts, faces) @ R.transpose(1, 2)
            facing = -(normals * torch.nn.functional.normalize(cam_pts, dim=-1)).sum(-1)
            colours = (0.35 + 0.65 * facing.clamp_min(0))[..., None] * tint  # [B, V, 3]
            for k, frame in enumerate(chunk):
                frame = np.asarray(frame)
                if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
                    raise ValueError(f"write_overlay: frames must be uint8 [{h}, {w}, 3], got {frame.dtype} "
                                     f"{list(frame.shape)}")
                img = render_mesh(verts[k], faces, cams[k], vertex_colors=colours[k], supersample=1,
                                  cull_backfaces=True)
                cover = alpha * img.alpha[0].cpu().numpy()  # [H, W, 1]
                mixed = frame / 255.0 * (1.0 - cover) + alpha * img.rgb[0].cpu().numpy()
                image = np.clip(np.round(mixed * 255.0), 0, 255).astype(np.uint8)
                for points, colour in ((landmarks, GREEN), (fitted, RED)):
                    if points is not None:
                        _dots(image, np.asarray(points[done + k], np.float64), colour)
                out.write(np.pad(image, pad, mode="edge"))
            done += len(chunk)
        return out.finish(expected_frames=n)


def _stat(values: np.ndarray, fn) -> float | None:  # noqa: ANN001 - a numpy reduction
    return float(fn(values)) if len(values) else None


def write_quality(path: Path, *, fps: float, reprojection_px: np.ndarray, failed: np.ndarray, jumps: np.ndarray,
                  handled: str, extra: dict) -> dict:
    """Write quality.json: per-frame reprojection px [T] (null where NaN), its mean, median and 95th
    percentile over frames with a face, the failed and jump frame indices, how bad frames were
    ``handled`` ("interpolated" or "dropped"), and ``extra`` merged in (its keys win). Returns it."""
    if handled not in ("interpolated", "dropped"):
        raise ValueError(f"write_quality: handled must be 'interpolated' or 'dropped', got {handled!r}")
    err = np.asarray(reprojection_px, np.float64)
    face = err[np.isfinite(err)]
    report = {
        "fps": float(fps), "frames": int(len(err)),
        "reprojection_px": [float(e) if np.isfinite(e) else None for e in err],
        "reprojection_px_mean": _stat(face, np.mean), "reprojection_px_median": _stat(face, np.median),
        "reprojection_px_p95": _stat(face, lambda x: np.percentile(x, 95)),
        "failed_frames": np.flatnonzero(failed).tolist(), "jump_frames": np.flatnonzero(jumps).tolist(),
        "handled": handled, **extra,
    }
    text = json.dumps(report, indent=2, allow_nan=False, default=_plain) + "\n"
    _replace_into(path, lambda tmp: tmp.write_text(text))
    return report


def _plain(value: object) -> object:
    """JSON for numpy values in ``extra``: scalars and arrays as Python numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"write_quality: {type(value).__name__} is not JSON serialisable")
