"""Fitting a FLAME-format head to a clip's landmarks: camera, head pose, expression, jaw, eyes,
eyelids and identity.

The fit is one batched optimisation over all frames (Adam), in two stages:

1. **rigid**: per-frame head rotation and translation and the clip's focal length, the mesh held
   neutral (landmarks on a rest mesh are fixed points, so this is cheap and has no local minima
   from expressions);
2. **full**: everything at once: the rigid parameters, per-frame expression, jaw, eyes and eyelids,
   and an identity shared by the clip: FLAME's shape coefficients, or for the demo head (no
   identity space) a smooth deformation of its template, radial basis functions centred on the
   landmarks, kept small by a prior.

The landmark term is a robust (Charbonnier) pixel distance between the embedded landmarks
projected by the camera and the detected (smoothed) ones; priors keep coefficients near zero and
second differences over time small (head pose, expression and jaw move smoothly; eyelids and
gaze are allowed to move fast: blinks and saccades). Only the vertices the landmarks lie on are
posed (``FlameModel(vertex_ids=...)``), so an iteration over hundreds of frames is milliseconds.

The camera is stored as metrical-tracker stores it (OpenCV extrinsics per frame, FLAME's global
rotation, neck and translation zero): X_cam = R x + t with R = R_front · rot(r_t), where R_front
= diag(1, -1, -1) looks at a head facing +z (FLAME's convention) from in front.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from being_kernel.api import Motion
from being_kernel.head import FlameModel, HeadModelData, axis_angle_to_matrix

from .embedding import LandmarkEmbedding
from .landmarks import FAST

R_FRONT = np.diag([1.0, -1.0, -1.0])
#: focal lengths tried by the focal search, log-spaced over a factor 4
FOCAL_GRID = 9
#: RBF width of the demo head's identity deformation (metres)
IDENTITY_SIGMA_M = 0.025


@dataclass
class TrackingConfig:
    """How the fit runs. Weights are relative to the landmark term (mean Charbonnier distance in
    pixels of a 512-pixel-high face crop; they are rescaled for other crop sizes)."""

    rigid_steps: int = 250
    full_steps: int = 500
    focal: float | None = None  # output pixels; None: estimated (starting from ``focal_init``)
    focal_init: float = 1000.0
    focal_search: bool = False  # search the focal length before fitting (see Tracker.search_focal)
    focal_prior: float = 2.0  # weight of (log f - log f_found)²
    expression_prior: float = 3.0
    jaw_prior: float = 2.0
    eyes_prior: float = 0.5
    shape_prior: float = 0.02
    identity_prior: float = 2e4  # per m² of mean landmark displacement
    smooth_rotation: float = 500.0  # per rad² of second difference
    smooth_translation: float = 20.0  # per (0.01 m)² of second difference
    smooth_expression: float = 1.0
    smooth_jaw: float = 2.0
    smooth_fast: float = 0.2  # eyelids and gaze
    charbonnier_px: float = 1.0
    photometric_weight: float = 40.0  # per unit of mean L1 colour difference (RGB summed) over the face
    device: str = "cpu"


@dataclass
class TrackingResult:
    """The fitted clip, T frames (float64 numpy).

    R [T, 3, 3], t [T, 3]: OpenCV extrinsics; K [3, 3] shared intrinsics (output pixels);
    expression [T, E]; jaw [T, 3]; eyes [T, 6] axis-angle; eyelids [T, 2]; shape [S];
    identity [V, 3]: template offsets (metres) for a head model without an identity space, else None;
    reprojection_px [T]: mean distance of the fitted landmarks to the raw detections (NaN where
    no face was found); projected [T, L, 2]: the fitted landmarks in the image.
    """

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    expression: np.ndarray
    jaw: np.ndarray
    eyes: np.ndarray
    eyelids: np.ndarray
    shape: np.ndarray
    identity: np.ndarray | None
    reprojection_px: np.ndarray
    projected: np.ndarray
    losses: dict[str, float] = field(default_factory=dict)

    def motion(self, head: HeadModelData, fps: float) -> Motion:
        """The fitted expression, jaw, eyes and eyelids as a :class:`Motion` (global rotation,
        neck and translation zero: the head pose is in the camera)."""
        f = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
        z = torch.zeros(len(self.R), 3)
        return Motion(f(self.expression), z, z.clone(), f(self.jaw), f(self.eyes), f(self.eyelids), z.clone(),
                      fps=fps, space=head.motion_space)


def identity_basis(head: HeadModelData, emb: LandmarkEmbedding, sigma: float = IDENTITY_SIGMA_M) -> np.ndarray:
    """G [V, K]: the demo head's identity deformation of vertex v is Σ_k G[v, k] c_k, with one
    radial basis function exp(-d²/2σ²) per landmark centre (the landmarks' rest positions),
    normalised so overlapping functions do not add up (a constant offset of all c moves the face
    region rigidly) and fading to zero away from the landmarks."""
    rest = head.v_template.astype(np.float64)
    corners = head.faces[emb.face_idx]  # [K, 3]
    centres = np.einsum("kc,kcd->kd", emb.bary.astype(np.float64), rest[corners])  # [K, 3]
    d2 = ((rest[:, None] - centres[None]) ** 2).sum(-1)  # [V, K]
    g = np.exp(-d2 / (2 * sigma**2))
    total = g.sum(1, keepdims=True)
    return (g / np.maximum(total, 1.0)).astype(np.float32)


def _second_difference(x: torch.Tensor) -> torch.Tensor:
    return x[2:] - 2 * x[1:-1] + x[:-2] if len(x) > 2 else x.new_zeros((0,) + x.shape[1:])


def _charbonnier(r: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.sqrt((r**2).sum(-1) + eps**2) - eps


class Tracker:
    """Fits ``head`` to a clip: ``fit_landmarks`` (stages 1 and 2), then optionally ``refine``
    (photometric, see ``photometric.py``), then ``result``. Landmarks [T, 478, 2] are output
    pixels of a camera with principal point ``pp`` [2]; ``found`` [T] marks frames with a
    detection (the others hold interpolated landmarks and weigh a tenth)."""

    def __init__(self, head: HeadModelData, emb: LandmarkEmbedding, config: TrackingConfig,
                 landmarks: np.ndarray, found: np.ndarray, pp: np.ndarray, image_size: int) -> None:
        self.head, self.emb, self.cfg = head, emb, config
        dev = self.device = torch.device(config.device)
        self.vertex_ids = emb.vertex_ids(head.faces)
        self.model = FlameModel(head, vertex_ids=self.vertex_ids).to(dev)
        self.demo_identity = head.n_shape == 0
        if self.demo_identity:
            self.full_basis = torch.from_numpy(identity_basis(head, emb))  # [V, K]
            self._basis_lmk = self.full_basis[torch.from_numpy(self.vertex_ids)].to(dev)  # [V', K]
        fast = np.isin(emb.mediapipe, FAST)
        self.weights = torch.from_numpy(np.where(fast, 2.0, 1.0)).float().to(dev)  # [L]
        self.found = np.asarray(found, bool)
        self.T = len(landmarks)
        self.obs = torch.from_numpy(np.asarray(landmarks)[:, emb.mediapipe]).float().to(dev)  # [T, L, 2]
        self.frame_w = torch.from_numpy(np.where(self.found, 1.0, 0.1)).float().to(dev)  # [T]
        self.size = image_size
        self.unit = image_size / 512.0  # the pixel weights were chosen for a 512-pixel crop
        self.pp = torch.as_tensor(np.asarray(pp), dtype=torch.float32, device=dev)
        self.r_front = torch.as_tensor(R_FRONT, dtype=torch.float32, device=dev)
        self._init_params()

    # ---------------------------------------------------------------- parameters

    def _rest_landmarks(self) -> torch.Tensor:
        motion = Motion.zeros(1, self.head.n_expression, space=self.head.motion_space, device=self.device)
        with torch.no_grad():
            v = self.model(motion).vertices
        return self.emb.points(v, self.head.faces, self.vertex_ids)[0]  # [L, 3]

    def _init_params(self, focal: float | None = None) -> None:
        """Neutral face turned to the camera; translation: the landmark centroid on its ray, at
        the depth that gives the landmarks their size in the image (for focal length ``focal``,
        default the given or initial one)."""
        cfg, dev, T = self.cfg, self.device, self.T
        self.rest = rest = self._rest_landmarks()  # [L, 3]
        f0 = self.focal0 = focal or (cfg.focal if cfg.focal is not None else cfg.focal_init)
        self.focal_centre = f0
        size_model = ((rest - rest.mean(0))[:, :2] ** 2).sum(-1).mean().sqrt()
        size_img = ((self.obs - self.obs.mean(1, keepdim=True)) ** 2).sum(-1).mean(-1).sqrt()  # [T]
        z0 = f0 * size_model / size_img
        ray = torch.cat([(self.obs.mean(1) - self.pp) / f0, torch.ones(T, 1, device=dev)], dim=1)  # [T, 3]
        n_id = self.full_basis.shape[1] * 3 if self.demo_identity else self.head.n_shape
        zeros = lambda *shape: torch.zeros(*shape, device=dev, requires_grad=True)  # noqa: E731
        self.p = {
            "rot": zeros(T, 3),
            "trans": (ray * z0[:, None] - (self.r_front @ rest.mean(0))[None]).requires_grad_(True),
            "log_f": torch.tensor(float(np.log(f0)), device=dev, requires_grad=cfg.focal is None),
            "expr": zeros(T, self.head.n_expression), "jaw": zeros(T, 3), "eyes": zeros(T, 6), "lids": zeros(T, 2),
            "ident": zeros(n_id),
        }
        self.lr = {"rot": 0.02, "trans": 0.002, "log_f": 0.01, "expr": 0.02, "jaw": 0.005, "eyes": 0.01,
                   "lids": 0.02, "ident": 0.0005 if self.demo_identity else 0.02}

    def _optimizer(self, names: list[str], scale: float = 1.0) -> torch.optim.Optimizer:
        if self.cfg.focal is not None and "log_f" in names:
            names = [n for n in names if n != "log_f"]
        return torch.optim.Adam([{"params": [self.p[n]], "lr": self.lr[n] * scale} for n in names])

    def cameras_R(self, frames: slice | torch.Tensor = slice(None)) -> torch.Tensor:
        """World-to-camera rotations [T', 3, 3]."""
        return self.r_front @ axis_angle_to_matrix(self.p["rot"][frames])

    def focal(self) -> torch.Tensor:
        return self.p["log_f"].exp()

    def translation(self, frames: slice | torch.Tensor = slice(None)) -> torch.Tensor:
        """Camera translations [T', 3]. The depth is stored at the initial focal length and scaled
        with the focal length, so a change of focal length keeps the head's size in the image and
        shows only as a change of perspective: the two are not fought over by the optimiser."""
        t = self.p["trans"][frames]
        return torch.cat([t[:, :2], t[:, 2:] * (self.focal() / self.focal0)], dim=1)

    def motion(self, frames: slice | torch.Tensor = slice(None)) -> Motion:
        p = self.p
        z = torch.zeros_like(p["jaw"][frames])
        return Motion(p["expr"][frames], z, z, p["jaw"][frames], p["eyes"][frames], p["lids"][frames], z,
                      space=self.head.motion_space)

    def identity_offsets(self, basis: torch.Tensor) -> torch.Tensor:
        """The demo head's template offsets at the vertices of ``basis`` [V', K] -> [V', 3]."""
        return basis @ self.p["ident"].view(-1, 3)

    def project(self, points: torch.Tensor, frames: slice | torch.Tensor = slice(None)) -> torch.Tensor:
        """Model-space points [T', N, 3] -> pixels [T', N, 2]."""
        cam = points @ self.cameras_R(frames).transpose(1, 2) + self.translation(frames)[:, None]
        return cam[..., :2] / cam[..., 2:].clamp_min(1e-4) * self.focal() + self.pp

    def landmarks3d(self) -> torch.Tensor:
        """The posed landmarks [T, L, 3] (model space)."""
        if self.demo_identity:
            v = self.model(self.motion()).vertices + self.identity_offsets(self._basis_lmk)[None]
        else:
            v = self.model(self.motion(), self.p["ident"]).vertices
        return self.emb.points(v, self.head.faces, self.vertex_ids)

    # ---------------------------------------------------------------- losses

    def landmark_loss(self, proj: torch.Tensor) -> torch.Tensor:
        r = (proj - self.obs) / self.unit
        per = _charbonnier(r, self.cfg.charbonnier_px) * self.weights  # [T, L]
        return (per.mean(1) * self.frame_w).sum() / self.frame_w.sum()

    def _smooth(self, x: torch.Tensor) -> torch.Tensor:
        d = _second_difference(x)
        return (d**2).sum(-1).mean() if len(d) else x.sum() * 0

    def rigid_prior(self) -> torch.Tensor:
        cfg, p = self.cfg, self.p
        loss = cfg.smooth_rotation * self._smooth(p["rot"]) + cfg.smooth_translation * self._smooth(p["trans"] / 0.01)
        if cfg.focal is None:
            loss = loss + cfg.focal_prior * (p["log_f"] - float(np.log(self.focal_centre))) ** 2
        return loss

    def face_prior(self) -> torch.Tensor:
        cfg, p = self.cfg, self.p
        loss = cfg.expression_prior * (p["expr"] ** 2).sum(-1).mean() + cfg.jaw_prior * (p["jaw"] ** 2).sum(-1).mean()
        loss = loss + cfg.eyes_prior * (p["eyes"] ** 2).sum(-1).mean()
        loss = loss + cfg.smooth_expression * self._smooth(p["expr"]) + cfg.smooth_jaw * self._smooth(p["jaw"])
        loss = loss + cfg.smooth_fast * (self._smooth(p["lids"]) + self._smooth(p["eyes"]))
        if self.demo_identity:
            loss = loss + cfg.identity_prior * (self.identity_offsets(self._basis_lmk) ** 2).sum(-1).mean()
        else:
            loss = loss + cfg.shape_prior * (p["ident"] ** 2).sum()
        return loss

    def clamp(self) -> None:
        """Keep eyelids in [0, 1], and the demo head's one-sided expression weights in [0, 1]."""
        with torch.no_grad():
            self.p["lids"].clamp_(0.0, 1.0)
            if self.head.motion_space == "being-demo-head":
                self.p["expr"].clamp_(0.0, 1.0)

    # ---------------------------------------------------------------- stages

    def _rigid(self, steps: int, progress=None) -> float:  # noqa: ANN001
        opt = self._optimizer(["rot", "trans", "log_f"])
        rest = self.rest.expand(self.T, -1, -1)
        for step in range(steps):
            opt.zero_grad()
            fit = self.landmark_loss(self.project(rest))
            (fit + self.rigid_prior()).backward()
            opt.step()
            if progress:
                progress("rigid", step + 1, steps)
        return float(fit.detach())

    def search_focal(self) -> float:
        """The focal length whose rigid fit explains the landmarks best, from a log-spaced grid
        over a factor 4 around the initial one, refined by a parabola through the best three. The
        landmark loss is nearly flat in the focal length (a change of focal is almost a change of
        depth), so gradient steps from one start crawl; a search does not."""
        grid = self.cfg.focal_init * 2.0 ** np.linspace(-1, 1, FOCAL_GRID)
        losses = []
        for f in grid:
            self._init_params(float(f))
            losses.append(self._rigid(self.cfg.rigid_steps))
        i = int(np.clip(np.argmin(losses), 1, len(grid) - 2))
        x, y = np.log(grid[i - 1:i + 2]), np.array(losses[i - 1:i + 2])
        a, b, _ = np.polyfit(x, y, 2)
        best = float(np.exp(np.clip(-b / (2 * a), x[0], x[2]))) if a > 0 else float(grid[int(np.argmin(losses))])
        self._init_params(best)
        return best

    def fit_landmarks(self, progress=None) -> None:  # noqa: ANN001 - progress(stage, step, steps) or None
        """The focal search (unless the focal length is given), stage 1 (rigid, neutral face),
        then stage 2 (everything), on the landmarks."""
        cfg = self.cfg
        if cfg.focal is None and cfg.focal_search:
            self.search_focal()
        self._rigid(cfg.rigid_steps, progress)
        opt = self._optimizer(list(self.p))
        for step in range(cfg.full_steps):
            opt.zero_grad()
            loss = self.landmark_loss(self.project(self.landmarks3d())) + self.rigid_prior() + self.face_prior()
            loss.backward()
            opt.step()
            self.clamp()
            if progress:
                progress("full", step + 1, cfg.full_steps)

    def result(self, raw: np.ndarray | None = None) -> TrackingResult:
        """The fit as numpy; ``raw`` [T, 478, 2]: the unsmoothed detections (NaN where none) that
        the reprojection error is measured against (default: the landmarks fitted to)."""
        with torch.no_grad():
            proj = self.project(self.landmarks3d())
            target = self.obs if raw is None else torch.from_numpy(raw[:, self.emb.mediapipe]).float().to(self.device)
            err = (proj - target).norm(dim=-1).mean(1)
            f = float(self.focal())
            pp = self.pp.cpu().double().numpy()
            K = np.array([[f, 0, pp[0]], [0, f, pp[1]], [0, 0, 1.0]])
            identity = self.identity_offsets(self.full_basis.to(self.device)).double().cpu().numpy() \
                if self.demo_identity else None
            n = lambda x: x.detach().double().cpu().numpy()  # noqa: E731
            p = self.p
            return TrackingResult(R=n(self.cameras_R()), t=n(self.translation()), K=K, expression=n(p["expr"]),
                                  jaw=n(p["jaw"]), eyes=n(p["eyes"]), eyelids=n(p["lids"]),
                                  shape=np.zeros(0) if self.demo_identity else n(p["ident"]), identity=identity,
                                  reprojection_px=np.where(self.found, n(err), np.nan), projected=n(proj))
