"""EMOTE + PoseVAE for Being."""
