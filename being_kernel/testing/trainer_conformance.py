"""The trainer conformance suite: what every ``being fit`` method must do, in one line.

    from being_kernel.testing import trainer_conformance_suite
    TestTrainer = trainer_conformance_suite("avatar", "splatting", {"steps": 12, "device": "cpu", ...})

It trains the installed plugin's :class:`~being_kernel.train.FitMethod` (found by its entry point)
on a small dataset (default: the kernel's synthetic set at 64x64, made once per test module) and
checks: the asset appears only when training ends (nothing under the final name nor hidden beside
it after an interrupt); a run interrupted by SIGINT and resumed gives the same files, byte for
byte, as one never interrupted; the summary is a complete, typed ``FitSummary``; and for avatars,
the held-out PSNR the trainer reports agrees with ``being eval``.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Callable

import pytest

from ..discovery import Registry
from ..errors import Interrupted


def _small_synthetic(root: Path) -> Path:
    from ..datasets.synthetic import make_synthetic

    return make_synthetic(root / "synth", size=64, frames=16, test_frames=4, progress=False)


def trainer_conformance_suite(contract: str, name: str, config: dict, *,
                              dataset: Callable[[Path], Path] = _small_synthetic, interrupt_at: int = 3,
                              plugin_config: dict | None = None, psnr_tolerance_db: float = 0.05) -> type:
    """A pytest class checking ``--CONTRACT NAME``'s trainer with fit config ``config`` (keep it
    small: ``steps`` > ``interrupt_at``, and CPU). ``dataset(directory) -> path`` makes the data;
    ``plugin_config`` configures the plugin that renders the trained asset for ``being eval``
    (``path`` is added)."""
    if config.get("steps", 0) <= interrupt_at:
        raise ValueError("trainer_conformance_suite: config['steps'] must exceed interrupt_at")

    def spec():  # noqa: ANN202
        return Registry.discover(env={}).spec(contract, name)

    def fit(data: Path, out: Path, **kw):  # noqa: ANN202, ANN003
        from .. import config as cfg
        from ..train.data import load_fit_data
        from ..train.loop import run_fit

        s = spec()
        video = load_fit_data(s.trainer.dataset, data)
        return run_fit(s.trainer, video, out, cfg.build(s.trainer.config, "fit", config), work=out.with_name(out.name + ".fit"),
                       contract=contract, method_name=name, log=lambda m: None, **kw)

    class Suite:
        @pytest.fixture(scope="class")
        @classmethod
        def data(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
            return dataset(tmp_path_factory.mktemp("trainer-data"))

        @pytest.fixture(scope="class")
        @classmethod
        def straight(cls, data: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
            out = tmp_path_factory.mktemp("straight") / "asset"
            return out, fit(data, out)

        def test_spec_declares_a_trainer(self) -> None:
            from ..train import FitConfig, FitMethod

            s = spec()
            assert s.trainer is not None, f"--{contract} {name} declares no trainer"
            assert issubclass(s.trainer.config, FitConfig)
            assert issubclass(s.trainer.load_method(), FitMethod)

        def test_summary_is_complete_and_typed(self, straight) -> None:  # noqa: ANN001
            from ..train import FitSummary

            out, summary = straight
            stored = FitSummary.from_json((out.with_name(out.name + ".fit") / "summary.json").read_text())
            assert stored == summary
            assert (summary.contract, summary.method, summary.steps) == (contract, name, config["steps"])
            assert summary.stopped_by == "steps" and summary.train_frames > 0
            assert summary.lines() and all(isinstance(line, str) for line in summary.lines())

        def test_interrupt_leaves_nothing_and_resume_equals_a_straight_run(self, data: Path, straight,  # noqa: ANN001
                                                                           tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
            method_cls = spec().trainer.load_method()
            original = method_cls.after_step

            def interrupting(self, ctx) -> None:  # noqa: ANN001
                original(self, ctx)
                if ctx.step == interrupt_at:
                    signal.raise_signal(signal.SIGINT)

            out = tmp_path / straight[0].name
            monkeypatch.setattr(method_cls, "after_step", interrupting)
            with pytest.raises(Interrupted, match=f"at step {interrupt_at}"):
                fit(data, out)
            assert not out.exists(), "an interrupted run wrote its asset"
            assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "a hidden partial output was left"
            monkeypatch.setattr(method_cls, "after_step", original)
            summary = fit(data, out)
            assert summary.steps == config["steps"]
            assert _files(out) == _files(straight[0]), "the resumed run's asset differs from the straight run's"

        def test_training_psnr_agrees_with_being_eval(self, data: Path, straight) -> None:  # noqa: ANN001
            if contract != "avatar":
                pytest.skip("held-out PSNR against being eval is defined for avatars")
            from ..evaluation import evaluate_avatar

            out, summary = straight
            report = evaluate_avatar(name, {**(plugin_config or {}), "path": str(out)}, data, "cpu")
            assert summary.test_psnr is not None
            assert report.psnr == pytest.approx(summary.test_psnr, abs=psnr_tolerance_db)

    Suite.__name__ = Suite.__qualname__ = f"TrainerConformance_{contract}_{name}"
    return Suite


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}
