"""Media I/O: decode audio files, write H.264/AAC MP4s atomically, read and write still images, and a
built-in demo voice."""

from being_kernel.media.audio_io import check_media_file, read_audio, read_audio_channels, resample
from being_kernel.media.demo_audio import demo_speech
from being_kernel.media.images import read_image, to_uint8, write_png
from being_kernel.media.video_writer import AAC_RATES, Mp4Writer, check_output_dir, check_output_path

__all__ = [
    "check_media_file",
    "AAC_RATES",
    "Mp4Writer",
    "check_output_dir",
    "check_output_path",
    "demo_speech",
    "read_audio",
    "read_audio_channels",
    "read_image",
    "resample",
    "to_uint8",
    "write_png",
]
