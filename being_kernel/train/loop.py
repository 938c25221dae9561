"""The training loop every method shares: ``run_fit``.

Work directory (``--work``, default ``OUT.fit``): ``checkpoint.pt`` (every ``checkpoint_every``
steps, at the end, and on Ctrl-C / SIGTERM), ``previews/*.png`` (ground truth | render of the first
held-out frame), ``summary.json`` (the typed :class:`FitSummary`). The asset appears under ``out``
only when training and export have finished (written into a hidden sibling, then renamed).

Progress is ``max(step / steps, elapsed / max_minutes)``, so a time budget still runs every
schedule to its end. The first Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint
and stops; running the same command again resumes exactly where it stopped.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import torch
from tqdm import tqdm

from ..devices import default_device, resolve_device
from ..errors import Interrupted
from ..media import write_png
from ..metrics import psnr
from .frames import progress_shown
from .checkpoint import CHECKPOINT, fingerprint, load_checkpoint, save_checkpoint
from ..spec import TrainerSpec
from .config import FitConfig
from .losses import PhotometricLoss
from .method import FitMethod, TrainRender, adam, build_method
from .summary import FitSummary, finite_or_none

if TYPE_CHECKING:
    from ..datasets import TrackedVideo

#: Held-out frames rendered per call when measuring PSNR.
EVAL_BATCH = 8


@dataclass
class FitContext:
    """What a method sees of the run at each step (read-only for the method, except ``generator``,
    which it draws its random numbers from, and ``optimizer``, for surgery)."""

    config: FitConfig
    device: torch.device
    generator: torch.Generator
    work: Path
    log: Callable[[str], None]
    optimizer: torch.optim.Optimizer | None = None
    step: int = 0
    elapsed: float = 0.0
    background: torch.Tensor | None = None  # [B, 3] of the current batch

    @property
    def progress(self) -> float:
        """Fraction of training done, in [0, 1]: by steps or by the time budget, whichever is further."""
        c = self.config
        p = self.step / c.steps
        if c.max_minutes is not None:
            p = max(p, self.elapsed / (60.0 * c.max_minutes))
        return min(p, 1.0)

    def backgrounds(self, n: int) -> torch.Tensor:
        """[n, 3] background colours per the config: random (from the generator), black or white."""
        mode = self.config.background
        if mode == "random":
            return torch.rand(n, 3, generator=self.generator).to(self.device)
        return torch.full((n, 3), 1.0 if mode == "white" else 0.0, device=self.device)


def run_fit(trainer: TrainerSpec, data: TrackedVideo, out: Path, config: FitConfig, *, work: Path,
            resume: bool = True, contract: str, method_name: str, log: Callable[[str], None] = print,
            progress: bool = True) -> FitSummary:
    """Train ``trainer``'s method on ``data`` (the dataset of its kind, ``train.data.load_fit_data``)
    and write its asset to ``out`` (replacing it if it exists: the CLI checks ``--overwrite``
    before); returns the summary, also in ``work/summary.json``. ``progress``: show a tqdm bar."""
    device = resolve_device(config.device) or default_device()
    generator = torch.Generator().manual_seed(config.seed)
    ctx = FitContext(config=config, device=device, generator=generator, work=work, log=log)
    loss_fn = PhotometricLoss(config, device, log)  # first: a missing LPIPS file fails before any reading
    with progress_shown(progress):
        method = build_method(trainer.load_method(), data, config, device, generator)
    print_ = fingerprint({"data": str(Path(data.root).resolve()), "frames": len(data),
                          "method": trainer.method, "config": _schedule_free(config), **method.fingerprint()})
    ckpt = work / CHECKPOINT
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, print_)
        method.load_state_dict(state["method"])
        _restore(ctx, method, state)
        initial = state["initial_test_psnr"]
        log(f"resuming from {ckpt} at step {ctx.step}")
    else:
        method.initialize()
        _new_optimizer(ctx, method)
        initial = held_out_psnr(method, device)
    work.mkdir(parents=True, exist_ok=True)  # only now: a run refused while starting leaves no directory

    def save() -> None:
        save_checkpoint(ckpt, {"fingerprint": print_, "step": ctx.step, "elapsed": ctx.elapsed,
                               "generator": generator.get_state(), "initial_test_psnr": initial,
                               "method": method.state_dict(), "optimizer": _optimizer_state(ctx)})

    with _stop_requests() as stop:
        try:
            _train(ctx, method, loss_fn, stop, save, bar=progress)
        except KeyboardInterrupt:  # a second Ctrl-C: the state may be mid-step, keep the last checkpoint
            resumes = (f"the last checkpoint in {work} resumes it: run the same command again" if ckpt.is_file()
                       else "no checkpoint was written yet")
            raise Interrupted(f"interrupted at step {ctx.step}; {resumes}") from None
        save()
        if stop.is_set():
            raise Interrupted(f"interrupted at step {ctx.step}; the checkpoint in {work} resumes it: run the same "
                              "command again")
        preview(ctx, method, "final")
        _export(method, out)
    train_frames, test_frames = int(method.train_indices.numel()), int(method.test_indices.numel())
    summary = FitSummary(
        contract=contract, method=method_name, data=str(data.root), out=str(out), device=str(device),
        steps=ctx.step, train_seconds=round(ctx.elapsed, 1),
        stopped_by="steps" if ctx.step >= config.steps else "time", train_frames=train_frames,
        test_frames=test_frames, image_size=(data.cameras.width, data.cameras.height),
        initial_test_psnr=finite_or_none(initial), test_psnr=finite_or_none(held_out_psnr(method, device)),
        stats=method.stats())
    summary.write(work / "summary.json")
    return summary


def _train(ctx: FitContext, method: FitMethod, loss_fn: PhotometricLoss, stop: threading.Event,
           save: Callable[[], None], *, bar: bool = True) -> None:
    c = ctx.config
    train = method.train_indices
    # with a time budget the bar runs over the budget's seconds, else over the steps
    budget = None if c.max_minutes is None else 60.0 * c.max_minutes
    off = not bar
    bar = (tqdm(total=c.steps, initial=ctx.step, unit="step", desc="being fit", leave=False, disable=off)
           if budget is None else
           tqdm(total=round(budget), initial=min(round(ctx.elapsed), round(budget)), unit="s", disable=off,
                desc="being fit (time budget)", leave=False, bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s{postfix}"))
    t_last = time.perf_counter()
    try:
        while ctx.progress < 1.0 and not stop.is_set():
            rates = method.learning_rates(ctx)
            for group in ctx.optimizer.param_groups:
                if group["name"] in rates:
                    group["lr"] = rates[group["name"]]
            pick = torch.randint(train.numel(), (c.batch_frames,), generator=ctx.generator)
            ctx.background = ctx.backgrounds(c.batch_frames)
            out = method.render_batch(train[pick.to(train.device)], ctx)
            loss = loss_fn(out.pred, out.target, ctx.progress)
            for term in out.losses.values():
                loss = loss + term
            ctx.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            method.after_backward(out, ctx)
            ctx.optimizer.step()
            ctx.step += 1
            method.after_step(ctx)
            if ctx.step % c.preview_every == 0:
                preview(ctx, method, f"step_{ctx.step:06d}")
            if ctx.step % c.checkpoint_every == 0:
                save()
            now = time.perf_counter()
            ctx.elapsed += now - t_last
            t_last = now
            bar.update(1 if budget is None else min(ctx.elapsed, budget) - bar.n)
            if ctx.step % 10 == 0:  # reading values back waits for the GPU: only when shown
                _show(bar, out, loss, method, ctx.step if budget is not None else None)
    finally:
        bar.close()


def _show(bar: tqdm, out: TrainRender, loss: torch.Tensor, method: FitMethod, step: int | None) -> None:
    with torch.no_grad():
        batch_psnr = float(psnr(out.pred.detach().clamp(0, 1), out.target).mean())
    extra = {s.name: s.value for s in method.stats()}
    if step is not None:  # the bar counts seconds: show the step too
        extra["step"] = step
    bar.set_postfix(loss=f"{float(loss.detach()):.4f}", psnr=f"{batch_psnr:.2f}", **extra)


@torch.no_grad()
def held_out_psnr(method: FitMethod, device: torch.device) -> float:
    """Mean PSNR (dB) over the method's held-out frames, over black (NaN when none are held out)."""
    test, values = method.test_indices, []
    for a in range(0, test.numel(), EVAL_BATCH):
        idx = test[a:a + EVAL_BATCH]
        pred, target = method.render_eval(idx, torch.zeros(idx.numel(), 3, device=device))
        values.append(psnr(pred.clamp(0, 1), target))
    return float(torch.cat(values).mean()) if values else math.nan


@torch.no_grad()
def preview(ctx: FitContext, method: FitMethod, name: str) -> None:
    """work/previews/NAME.png: ground truth | render of the first held-out (else training) frame, over black."""
    idx = (method.test_indices if method.test_indices.numel() else method.train_indices)[:1]
    pred, target = method.render_eval(idx, torch.zeros(1, 3, device=ctx.device))
    (ctx.work / "previews").mkdir(exist_ok=True)
    write_png(ctx.work / "previews" / f"{name}.png", torch.cat([target[0], pred[0].clamp(0, 1)], dim=1).cpu())


# ---- optimizer state ------------------------------------------------------------------------

def _new_optimizer(ctx: FitContext, method: FitMethod) -> None:
    ctx.optimizer = adam(method.parameter_groups(), method.adam_eps)


def _optimizer_state(ctx: FitContext) -> dict:
    """Adam's moments and learning rates by group name: tensors and floats only."""
    out = {}
    for group in ctx.optimizer.param_groups:
        st = ctx.optimizer.state.get(group["params"][0]) or {}
        entry: dict = {"lr": float(group["lr"])}
        if st:
            entry.update(exp_avg=st["exp_avg"], exp_avg_sq=st["exp_avg_sq"], step=torch.as_tensor(st["step"]).float())
        out[group["name"]] = entry
    return out


def _restore(ctx: FitContext, method: FitMethod, state: dict) -> None:
    _new_optimizer(ctx, method)
    saved = state["optimizer"]
    for group in ctx.optimizer.param_groups:
        entry = saved.get(group["name"])
        if entry is None:
            continue
        group["lr"] = entry["lr"]
        if "exp_avg" in entry:
            ctx.optimizer.state[group["params"][0]] = {"step": entry["step"].cpu(),
                                                       "exp_avg": entry["exp_avg"].to(ctx.device),
                                                       "exp_avg_sq": entry["exp_avg_sq"].to(ctx.device)}
    ctx.step, ctx.elapsed = int(state["step"]), float(state["elapsed"])
    ctx.generator.set_state(state["generator"])


def _schedule_free(config: FitConfig) -> dict:
    """The config fields a checkpoint must match: all but those that only say how long to train or
    how often to report (a resumed run may extend its budget)."""
    skip = {"steps", "max_minutes", "preview_every", "checkpoint_every", "device"}
    return {k: v for k, v in config.model_dump().items() if k not in skip}


# ---- stopping and export ------------------------------------------------------------------------

@contextmanager
def _stop_requests() -> Iterator[threading.Event]:
    """An event set by the first SIGINT or SIGTERM (the loop stops at the end of the step); a second
    SIGINT raises KeyboardInterrupt at once. Outside the main thread signals are left alone."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request(signum, frame) -> None:  # noqa: ANN001 - signal handler signature
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _export(method: FitMethod, out: Path) -> None:
    """``method.export`` into a hidden sibling of ``out``, renamed to ``out`` only when complete."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        method.export(tmp, out.name)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
