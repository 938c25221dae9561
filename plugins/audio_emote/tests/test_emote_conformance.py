"""The kernel's conformance suite on the emote plugin found through its entry point, with tiny
random-weight files in the published layouts written at collection time."""

import atexit
import shutil
import tempfile
from pathlib import Path

from being_audio_emote.testing import random_audio2pose, random_emote, write_emote_folder, write_sadtalker
from being_kernel.testing import conformance_suite

_ROOT = Path(tempfile.mkdtemp(prefix="being-emote-"))
atexit.register(shutil.rmtree, _ROOT, True)
write_emote_folder(_ROOT / "EMOTE_v2", random_emote())
write_sadtalker(_ROOT / "SadTalker_V0.0.2_256.safetensors", random_audio2pose())

# Streaming runs the same per-window and per-chunk computation as batch: equal bit for bit (atol 0).
TestEmote = conformance_suite("audio", "emote", {"weights": str(_ROOT / "EMOTE_v2"), "pose_weights": str(_ROOT),
                                                 "device": "cpu", "window_s": 1.0}, atol=0.0)
