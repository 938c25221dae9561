"""Viseme tables for any FLAME-layout head model, solved for from mouth geometry.

Each viseme's target is a mouth shape in metres, measured on the demo head posed with the
designed table (lip opening at the centre, mouth width, lip protrusion; all relative to the
neutral face and scaled by the ratio of mouth widths). For another model we solve, per viseme,
for the jaw angle and expression coefficients that reproduce that geometry on the model's own lip
vertices (the "lips" region, e.g. from FLAME_masks.pkl), by a small regularised gradient descent.
Results are cached per model file (sha256) in ~/.cache/being/visemes (XDG_CACHE_HOME respected).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from being_kernel import ConfigError

from .phones import VISEMES
from .visemes import HeadTable, demo_table

CACHE_VERSION = 1


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "being" / "visemes"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


class MouthGeometry:
    """Differentiable mouth measures on a model's lip vertices: opening, width, protrusion."""

    def __init__(self, data) -> None:  # noqa: ANN001 - HeadModelData
        from being_kernel.head import FlameModel

        lips = data.regions.get("lips")
        if lips is None or len(lips) < 8:
            raise ConfigError(f"head model '{data.name}' has no 'lips' region to solve visemes on",
                              hint="put FLAME_masks.pkl beside the model (FLAME download), or add a 'lips' region")
        self.model, self.data = FlameModel(data), data
        v = data.v_template[lips].astype(np.float64)
        cx, cy = np.median(v[:, 0]), np.median(v[:, 1])
        half = np.abs(v[:, 0] - cx).max()
        central = np.abs(v[:, 0] - cx) < 0.25 * half
        self.upper = torch.as_tensor(lips[central & (v[:, 1] >= cy)])
        self.lower = torch.as_tensor(lips[central & (v[:, 1] < cy)])
        order = np.argsort(v[:, 0])
        k = max(2, len(lips) // 20)
        self.left, self.right = torch.as_tensor(lips[order[-k:]]), torch.as_tensor(lips[order[:k]])
        self.central = torch.as_tensor(lips[central])
        if len(self.upper) == 0 or len(self.lower) == 0:
            raise ConfigError(f"head model '{data.name}': cannot split its 'lips' region into upper and lower lip")
        self.neutral = None
        self.neutral = self.measure(torch.zeros(1), torch.zeros(1, data.n_expression)).detach()

    def measure(self, jaw: torch.Tensor, expr: torch.Tensor) -> torch.Tensor:
        """[N] jaw angles, [N, E] expressions -> [N, 3] (opening, width, protrusion) in metres."""
        from being_kernel.api import Motion

        m = Motion.zeros(len(jaw), self.data.n_expression, space=self.data.motion_space)
        m.jaw = torch.stack([jaw, torch.zeros_like(jaw), torch.zeros_like(jaw)], 1)
        m.expression = expr
        v = self.model(m).vertices
        opening = v[:, self.upper, 1].mean(1) - v[:, self.lower, 1].mean(1)
        width = v[:, self.left, 0].mean(1) - v[:, self.right, 0].mean(1)
        protrusion = v[:, self.central, 2].mean(1)
        out = torch.stack([opening, width, protrusion], 1)
        return out if self.neutral is None else out - self.neutral


def demo_targets() -> tuple[np.ndarray, float]:
    """[K, 3] geometry change per viseme on the demo head, and its neutral mouth width."""
    from being_kernel.head import build_demo_head

    geo = MouthGeometry(build_demo_head())
    tab = demo_table()
    with torch.no_grad():
        d = geo.measure(torch.from_numpy(tab.jaw), torch.from_numpy(tab.expr)).numpy()
        v = geo.model(_zero_motion(geo.data)).vertices[0]
        width = float(v[geo.left, 0].mean() - v[geo.right, 0].mean())
    return d, width


def _zero_motion(data):  # noqa: ANN001, ANN202
    from being_kernel.api import Motion

    return Motion.zeros(1, data.n_expression, space=data.motion_space)


def solve_table(data, steps: int = 120) -> HeadTable:  # noqa: ANN001 - HeadModelData
    """Solve jaw + expression per viseme so the model's mouth geometry matches the targets."""
    geo = MouthGeometry(data)
    targets, demo_width = demo_targets()
    with torch.no_grad():
        width = float(geo.model(_zero_motion(data)).vertices[0, geo.left, 0].mean()
                      - geo.model(_zero_motion(data)).vertices[0, geo.right, 0].mean())
    target = torch.from_numpy(targets).float() * (width / demo_width)
    k, e = len(VISEMES), data.n_expression
    jaw = torch.zeros(k, requires_grad=True)
    expr = torch.zeros(k, e, requires_grad=True)
    opt = torch.optim.Adam([jaw, expr], lr=0.04)
    closing = torch.tensor([v in ("PBM", "SIL") for v in VISEMES])
    reg = torch.where(closing, 1.0, 1e-2)
    scale = 1e-3  # residuals in millimetres
    for _ in range(steps):
        opt.zero_grad()
        got = geo.measure(jaw, expr)
        res = (got - target) / scale
        # closures (PBM): only "no more open than the target" on the opening, and a strong pull
        # to neutral: a closed seam is not visible to the region-mean measures, neutral is closed
        res = torch.where(closing[:, None] & (torch.arange(3) == 0), torch.relu(res), res)
        loss = (res ** 2).sum() + (reg[:, None] * expr ** 2).sum() + 10.0 * (torch.relu(-jaw) ** 2).sum() + 1e5 * (closing * jaw ** 2).sum()
        loss.backward()
        opt.step()
        with torch.no_grad():
            jaw.clamp_(0.0, 0.4)
            expr.clamp_(-3.0, 3.0)
            # closures (PBM) and silence use the model's neutral mouth, which is closed for FLAME
            # and the demo head: the region-mean measures cannot see whether the seam is shut
            jaw[closing] = 0.0
            expr[closing] = 0.0
    with torch.no_grad():
        got = geo.measure(jaw, expr)
        err_mm = ((got - target).abs().max(1).values * 1000).numpy()
    names = data.expression_names or []
    idx = {n: i for i, n in enumerate(names)}
    blink = (idx["eye_blink_L"], idx["eye_blink_R"]) if {"eye_blink_L", "eye_blink_R"} <= idx.keys() else None
    brow = (idx["brow_raise_L"], idx["brow_raise_R"]) if {"brow_raise_L", "brow_raise_R"} <= idx.keys() else None
    return HeadTable(data.motion_space, e, jaw.detach().numpy().astype(np.float32),
                     expr.detach().numpy().astype(np.float32), blink=blink, brow=brow, source="solved",
                     meta={"max_error_mm": err_mm.tolist(), "target_m": target.numpy().tolist()})


def table_for_model(path: str | Path) -> HeadTable:
    """The solved viseme table of the head model at ``path``, from the cache when possible."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"audio.head_model: no such file or directory: {path}",
                          hint="give a FLAME .pkl or a head directory (model.json + model.safetensors)")
    key = _sha256(path)
    cache = cache_dir() / f"{key}-v{CACHE_VERSION}.npz"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        return HeadTable(meta["motion_space"], int(z["expr"].shape[1]), z["jaw"], z["expr"],
                         blink=tuple(meta["blink"]) if meta["blink"] else None,
                         brow=tuple(meta["brow"]) if meta["brow"] else None, source="solved (cached)", meta=meta)
    if path.is_dir():
        from being_kernel.head import load_head_model

        data = load_head_model(path)
    else:
        from being_kernel.head import load_flame_pkl

        data = load_flame_pkl(path)
    table = solve_table(data)
    cache.parent.mkdir(parents=True, exist_ok=True)
    meta = {"motion_space": table.motion_space, "blink": table.blink, "brow": table.brow,
            "max_error_mm": table.meta["max_error_mm"], "source": str(path)}
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, jaw=table.jaw, expr=table.expr, meta=np.array(json.dumps(meta)))
    os.replace(tmp, cache)
    return table
