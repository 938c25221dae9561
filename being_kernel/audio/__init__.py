"""Pieces shared by audio-model plugins: the wav2vec 2.0 encoder (the ``transformers.Wav2Vec2Model``
layout, written here so no plugin needs ``transformers`` at run time) and streaming
Savitzky-Golay smoothing of motion."""

from being_kernel.audio.savgol import Filter, Smoother, savgol_weights, smooth_frames
from being_kernel.audio.wav2vec import BASE_960H, XLSR_300M, Wav2Vec2, Wav2VecSizes, canonical_weight_norm, tiny_sizes

__all__ = ["BASE_960H", "XLSR_300M", "Filter", "Smoother", "Wav2Vec2", "Wav2VecSizes", "canonical_weight_norm",
           "savgol_weights", "smooth_frames", "tiny_sizes"]
