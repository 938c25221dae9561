"""What `being plugins` reads: cheap to import (pydantic only; no torch, no pocketsphinx)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from being_kernel import PluginConfig, PluginSpec


class VisemeConfig(PluginConfig):
    text: str | None = Field(None, description="transcript of the speech: force-align it instead of free phone recognition")
    text_file: str | None = Field(None, description="path to a .txt transcript (used when `text` is not set)")
    words: bool = Field(
        True, description="without a transcript, also recognise words (pocketsphinx's en-us language model) "
        "and take the place of p/b/m from their dictionary phones (more CPU: ~0.3 s per second of audio)")
    workers: int | None = Field(
        None, ge=1, description="processes that recognise a clip's utterances in parallel in a batch call "
        "(`being run`, `being bench`) without a transcript (None: one per CPU core, at most 8, and at most OMP_NUM_THREADS when set; 1: none). "
        "Same result for any number; streams decode as they go")
    head_model: str | None = Field(
        None, description="FLAME .pkl or own-format head directory: derive a viseme table for it "
        "(cached under ~/.cache/being/visemes); unset = the kernel's demo head")
    seed: int | None = Field(
        None, description="seed of blinks and head motion, mixed with the audio (None: the audio alone); "
        "the same audio and seed always give the same motion")
    fps: float = Field(25.0, gt=0, description="motion frames per second")
    lookahead_s: float = Field(0.3, ge=0.1, le=2.0,
                               description="streaming latency: a frame is final once audio this far past it is heard")
    jaw_gain: float = Field(1.0, ge=0, le=3, description="scale of the jaw opening")
    loudness_jaw: float = Field(0.6, ge=0, le=1,
                                description="share of the jaw opening that follows loudness (0: visemes only)")
    blink_rate_hz: float = Field(0.3, ge=0, le=2, description="mean blinks per second (0: no blinks)")
    blink_via: Literal["eyelids", "expression"] = Field(
        "eyelids", description="drive blinks through Motion.eyelids, or the demo head's eye_blink_L/R expressions")
    head_motion: float = Field(1.0, ge=0, le=5, description="scale of the speech-driven head and neck motion (0: still)")
    brow_gain: float = Field(1.0, ge=0, le=3, description="scale of the brow raise on loud syllables")


SPEC = PluginSpec(
    contract="audio",
    description="phones (pocketsphinx, or forced alignment of a transcript) to coarticulated visemes, blinks and head motion",
    config=VisemeConfig,
    factory="being_audio_viseme.model:VisemeModel",
    motion_spaces=("being-demo-head", "flame2020", "flame2023"),
)
