"""Methods of the field that Being knows by name, so ``being plugins`` can show them with an
install hint when they are not installed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownMethod:
    name: str
    contract: str
    distribution: str
    directory: str  # plugins/<directory> in the Being repository
    description: str
    planned: bool = False  # no release yet: nothing to install, so no install command is named

    @property
    def install_hint(self) -> str:
        if self.planned:
            return "planned, not released yet: there is no package to install"
        return f"pip install {self.distribution}  (from a checkout: pip install -e plugins/{self.directory})"


KNOWN_METHODS: tuple[KnownMethod, ...] = (
    KnownMethod("artalk", "audio", "being-audio-artalk", "audio_artalk",
                "ARTalk (SIGGRAPH Asia 2025): autoregressive audio-to-FLAME, lips, head pose and blinks"),
    KnownMethod("emote", "audio", "being-audio-emote", "audio_emote",
                "EMOTE (SIGGRAPH Asia 2023): emotional speech to FLAME lips and expression, with SadTalker's PoseVAE head motion"),
    KnownMethod("viseme", "audio", "being-audio-viseme", "audio_viseme",
                "offline phoneme recognition to visemes, blinks and head motion; no weights needed"),
    KnownMethod("splatting", "avatar", "being-avatar-splatting", "avatar_splatting",
                "SplattingAvatar (CVPR 2024): Gaussians embedded in the FLAME mesh"),
    KnownMethod("flash", "avatar", "being-avatar-flash", "avatar_flash",
                "FlashAvatar (CVPR 2024): Gaussians on the FLAME UV surface with learned offsets"),
    KnownMethod("static", "torso", "being-torso-static", "torso_static",
                "head over a static or looping background and torso plate, feathered at the neck"),
    KnownMethod("warp", "torso", "being-torso-warp", "torso_warp",
                "Gaussian Head & Shoulders (ICLR 2025): a neural torso texture warped to follow the head"),
    KnownMethod("restorer", "torso", "being-torso-restorer", "torso_restorer",
                "SyncTalk++'s Torso Restorer: a per-subject U-Net that repaints the seam where head and torso meet"),
)
