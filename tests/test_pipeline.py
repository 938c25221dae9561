"""Building and running the pipeline: stage checks and the bus with real plugin objects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from being_kernel.errors import ContractError, StageError
from being_kernel.pipeline import check_stages, run_pipeline
from being_kernel.testing.fakes import FakeAudioToFlame, FakeCompositor, FakeRenderer
from being_kernel.testing.specs import FakeAudioConfig, FakeCompositorConfig, FakeRendererConfig
from being_kernel.types import HEAD_POSE_FIELDS, Audio


def _stages(audio=None, avatar=None, torso=None):
    return (FakeAudioToFlame(FakeAudioConfig(**(audio or {}))), FakeRenderer(FakeRendererConfig(**(avatar or {}))),
            FakeCompositor(FakeCompositorConfig(**(torso or {}))))


def test_matching_spaces_pass_without_warning() -> None:
    check = check_stages(*_stages())
    assert not check.pose_only and check.warnings == []


def test_other_space_is_pose_only_with_a_warning() -> None:
    check = check_stages(*_stages(audio={"motion_space": "flame2020", "n_expression": 100}), names=("artalk", "fake", "fake"))
    assert check.pose_only and "flame2020" in check.warnings[0] and "rotations only" in check.warnings[0]


def test_mismatch_is_refused_naming_what_would_fit() -> None:
    stages = _stages(audio={"motion_space": "flame2020", "n_expression": 100},
                     avatar={"motion_spaces": ["being-demo-head"], "accepts_pose_only": False})
    providers = {("avatar", "flame2020"): ["splatting"], ("audio", "being-demo-head"): ["viseme"]}
    with pytest.raises(ContractError) as err:
        check_stages(*stages, names=("artalk", "demo", "fake"), suggest=lambda c, s: providers.get((c, s), []))
    assert "--audio artalk produces 'flame2020'" in str(err.value)
    assert err.value.hint == "would fit: --avatar splatting; --audio viseme"


@pytest.mark.parametrize("audio, avatar, torso, match", [
    ({"fps": 30.0}, {"fps": 25.0}, {}, "needs motion at 25 fps"),
    ({"n_expression": 10}, {"n_expression": 50}, {}, "expression coefficients"),
    ({}, {}, {"size": [255, 256]}, "cannot be encoded"),
])
def test_rate_width_and_size_mismatches(audio, avatar, torso, match) -> None:
    with pytest.raises(ContractError, match=match):
        check_stages(*_stages(audio, avatar, torso))


class ListSink:
    def __init__(self) -> None:
        self.frames, self.finished, self.aborted = [], None, False

    def write(self, image: torch.Tensor) -> None:
        self.frames.append(image.clone())

    def finish(self, expected_frames=None):
        assert len(self.frames) == expected_frames
        self.finished = expected_frames

    def abort(self) -> None:
        self.aborted = True


def _speech(seconds: float = 1.3, rate: int = 16000) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    return Audio((0.4 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32), rate)


def test_offline_and_live_give_the_same_frames() -> None:
    audio = _speech()
    offline, live = ListSink(), ListSink()
    run_pipeline(*_stages(), audio, offline, mode="offline")
    result = run_pipeline(*_stages(), audio, live, mode="live", queue_size=64)
    assert offline.finished == live.finished == audio.num_frames(25) == result.frames
    assert sum(result.stats.dropped.values()) == 0
    for a, b in zip(offline.frames, live.frames):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_live_mode_with_a_slow_renderer_drops_but_stays_frame_exact() -> None:
    """Dropped frames are replaced by the previous picture, never by a later one: every written
    frame equals the offline frame of its own index or of an earlier one, in order (frames
    before the first one that arrived can only show that one)."""
    audio, sink, offline = _speech(2.0), ListSink(), ListSink()
    run_pipeline(*_stages(), audio, offline)
    result = run_pipeline(*_stages(avatar={"delay_s": 0.01}), audio, sink, mode="live", realtime=True,
                          chunk_s=0.5, chunk_frames=3, queue_size=2)
    assert sink.finished == 50 and len(sink.frames) == 50
    assert sum(result.stats.dropped.values()) > 0
    source = []  # the offline index each live frame shows
    for i, frame in enumerate(sink.frames):
        matches = [j for j in range(50) if torch.allclose(frame, offline.frames[j], atol=1e-5)]
        assert matches, f"live frame {i} matches no offline frame"
        source.append(min(matches, key=lambda j: abs(j - i)))
    first = source[0]
    assert all(src <= max(i, first) for i, src in enumerate(source)), source
    assert source == sorted(source) and len(set(source)) < 50


class SeeingCompositor(FakeCompositor):
    """The fake compositor, noting the head pose of every head frame it composites, by index."""

    def __init__(self, config: FakeCompositorConfig) -> None:
        super().__init__(config)
        self.seen: dict = {}

    def composite(self, heads):
        self.seen.update({h.index: h.head for h in heads})
        return super().composite(heads)


@pytest.mark.parametrize("mode", ["offline", "live"])
def test_the_compositor_sees_each_frames_head_pose(mode: str) -> None:
    """Through the bus (and live mode's dropping and renumbering), head frame i reaches the
    compositor with motion frame i's pose."""
    audio = _speech(2.0)
    live = mode == "live"
    audio_model, renderer, _ = _stages(avatar={"delay_s": 0.01} if live else None)
    compositor = SeeingCompositor(FakeCompositorConfig())
    options = dict(realtime=True, chunk_s=0.5, chunk_frames=3, queue_size=2) if live else {}
    result = run_pipeline(audio_model, renderer, compositor, audio, ListSink(), mode=mode, **options)
    motion = FakeAudioToFlame(FakeAudioConfig()).generate(audio)
    if live:
        assert sum(result.stats.dropped.values()) > 0 and 0 < len(compositor.seen) < motion.num_frames
    else:
        assert sorted(compositor.seen) == list(range(motion.num_frames))
    for index, head in compositor.seen.items():
        for name in HEAD_POSE_FIELDS:
            torch.testing.assert_close(getattr(head, name), getattr(motion, name)[index], atol=1e-6, rtol=0)
        assert head.camera is None  # the fake renderer has no 3-D camera


def test_failing_plugin_stops_the_run_and_aborts_the_sink() -> None:
    sink = ListSink()
    with pytest.raises(StageError, match="fail after 10 frames"):
        run_pipeline(*_stages(audio={"fail_after_frames": 10}), _speech(), sink, mode="live")
    assert sink.aborted and sink.finished is None


def test_the_mouth_follows_loudness() -> None:
    """End to end through the fakes: loud frames render a bigger dark mouth than silent ones."""
    rate = 16000
    t = np.arange(rate * 2) / rate
    loud = (np.abs(t - 1.0) < 0.4).astype(np.float32)  # silence, 0.8 s of tone, silence
    audio = Audio((0.5 * loud * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    sink = ListSink()
    run_pipeline(*_stages(), audio, sink)
    dark = [float((f.mean(-1) < 0.25).float().sum()) for f in sink.frames]
    assert np.mean(dark[20:30]) > 1.5 * np.mean(dark[:5])
