"""Write H.264 + AAC MP4 files atomically: frames go to a hidden temporary file next to the
target, which is renamed onto the final name only by ``finish()``; anything else deletes it.

H.264 comes from NVENC (``h264_nvenc``, on an NVIDIA GPU with an encoder block, when the installed
PyAV/FFmpeg build has it) or from libx264 on the CPU; ``encoder="auto"`` takes NVENC when a tiny
test encoder opens (asked once per process) and libx264 otherwise.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from fractions import Fraction
from glob import escape as glob_escape
from pathlib import Path
from types import TracebackType

import av
import numpy as np
import torch

from being_kernel.errors import InputError
from being_kernel.media.audio_io import resample
from being_kernel.media.images import to_uint8

#: Sample rates FFmpeg's AAC encoder accepts (7350 left out: players handle it poorly).
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_AAC_FRAME = 1024  # samples per AAC frame
ENCODERS = ("auto", "libx264", "h264_nvenc")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7")  # fastest .. best quality
#: libx264's default preset, chosen for throughput (docs/benchmarks.md, "H.264 encoder: presets and
#: NVENC"; benchmarks/encoder_presets.py): on the default talking head at crf 18, on 2 and 16 CPU
#: cores, ``superfast`` takes 2.5x less CPU time per frame than ``medium`` (1.9-2.6x its frame rate)
#: at the same quality (PSNR +0.1 dB, SSIM within 0.001), in a file ~2.4x as large (~0.65 Mbit/s at
#: 512²); ``veryfast`` and ``faster`` lose 0.3-0.9 dB, ``ultrafast`` (no CABAC, no deblocking) needs 4x the bits.
DEFAULT_X264_PRESET = "superfast"
DEFAULT_NVENC_PRESET = "p4"
#: An x264 preset named for NVENC: the NVENC preset of about the same place on the speed scale.
_X264_TO_NVENC = {"ultrafast": "p1", "superfast": "p2", "veryfast": "p3", "faster": "p3", "fast": "p4",
                  "medium": "p5", "slow": "p6", "slower": "p7", "veryslow": "p7", "placebo": "p7"}
_BT709 = 1  # AVCOL_SPC/PRI/TRC_BT709 and SWS_CS_ITU709 share the value 1
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG


@functools.cache
def nvenc_available() -> bool:
    """Whether ``h264_nvenc`` is in this PyAV/FFmpeg build and a small encoder of it opens and
    encodes a frame (an NVIDIA GPU with NVENC and its driver are there). Asked once per process."""
    if "h264_nvenc" not in av.codecs_available:
        return False
    try:
        cc = av.CodecContext.create("h264_nvenc", "w")
        cc.width, cc.height, cc.pix_fmt = 256, 256, "yuv420p"
        cc.time_base, cc.framerate = Fraction(1, 25), Fraction(25)
        cc.open()
        frame = av.VideoFrame(256, 256, "yuv420p")
        frame.pts = 0
        cc.encode(frame)
        cc.encode(None)
    except Exception:  # noqa: BLE001 - no GPU, no driver, no free session, a data-centre GPU without NVENC
        return False
    return True


def resolve_encoder(encoder: str = "auto", preset: str | None = None) -> tuple[str, str]:
    """(FFmpeg encoder, its preset) for ``encoder`` (one of ``ENCODERS``) and ``preset`` (an x264
    preset, an NVENC preset ``p1``..``p7``, or None for the encoder's default). An x264 preset
    given for NVENC becomes the NVENC preset at about the same speed; an NVENC preset needs NVENC.
    Unknown names raise ``InputError``."""
    if encoder not in ENCODERS:
        raise InputError(f"unknown H.264 encoder {encoder!r}", hint=f"use one of: {', '.join(ENCODERS)}")
    if preset is not None and preset not in X264_PRESETS and preset not in NVENC_PRESETS:
        raise InputError(f"unknown H.264 preset {preset!r}",
                         hint=f"x264: {', '.join(X264_PRESETS)}; NVENC: {', '.join(NVENC_PRESETS)}")
    if encoder == "auto":
        encoder = "h264_nvenc" if nvenc_available() else "libx264"
    if encoder == "h264_nvenc":
        if not nvenc_available():
            raise InputError("the H.264 encoder h264_nvenc does not open on this machine (it needs an NVIDIA GPU "
                             "with NVENC, its driver, and a PyAV/FFmpeg build with h264_nvenc)",
                             hint="use --encoder auto or libx264")
        return encoder, _X264_TO_NVENC.get(preset, preset) if preset else DEFAULT_NVENC_PRESET
    if preset in NVENC_PRESETS:
        raise InputError(f"preset {preset!r} is an NVENC preset, but the encoder is libx264"
                         + ("" if nvenc_available() else " (h264_nvenc does not open on this machine)"),
                         hint=f"pick an x264 preset: {', '.join(X264_PRESETS)}")
    return encoder, preset or DEFAULT_X264_PRESET


def check_output_path(path: str | Path) -> Path:
    """The resolved ``path`` if an MP4 can be written there, else ``InputError``."""
    p = Path(path).expanduser().resolve()
    hint = "choose a .mp4 path in an existing, writable directory"
    if p.suffix.lower() != ".mp4":
        raise InputError(f"output '{p}' must end in .mp4 (got '{p.suffix or 'no suffix'}')", hint=hint)
    if p.is_dir():
        raise InputError(f"output '{p}' is an existing directory", hint=hint)
    _check_parent(p, hint)
    return p


def check_output_dir(path: str | Path, *, force: bool = False) -> Path:
    """The resolved ``path`` if a directory can be written there (its parent exists and is
    writable; it does not exist yet, or is empty, or ``force``), else ``InputError``."""
    p = Path(path).expanduser().resolve()
    if p.exists() and not force and (not p.is_dir() or any(p.iterdir())):
        raise InputError(f"output '{p}' already exists", hint="pick another path, or pass --overwrite to replace it")
    _check_parent(p, "choose a path in an existing, writable directory")
    return p


def _check_parent(p: Path, hint: str) -> None:
    parent = p.parent
    if not parent.exists():
        raise InputError(f"output directory '{parent}' does not exist", hint=f"create it first: mkdir -p '{parent}'")
    if not parent.is_dir():
        raise InputError(f"output parent '{parent}' is not a directory", hint=hint)
    # os.access alone lies for root and some network/ACL filesystems, so also try a real file.
    writable = os.access(parent, os.W_OK | os.X_OK)
    if writable:
        try:
            with tempfile.NamedTemporaryFile(dir=parent, prefix=".being-write-test-"):
                pass
        except OSError:
            writable = False
    if not writable:
        raise InputError(f"output directory '{parent}' is not writable", hint=hint)


def _to_rgb24(frame: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """uint8 ``[H, W, 3]`` from a uint8 array/tensor or a float array/tensor in [0, 1]."""
    if isinstance(frame, np.ndarray):
        frame = torch.from_numpy(frame)
    if not isinstance(frame, torch.Tensor):
        raise ValueError(f"frame must be a numpy array or torch tensor, got {type(frame).__name__}")
    if tuple(frame.shape) != (height, width, 3):
        raise ValueError(f"frame must be [H, W, 3] = [{height}, {width}, 3], got {list(frame.shape)}")
    if not frame.is_floating_point() and frame.dtype != torch.uint8:
        raise ValueError(f"frame must be uint8 or float in [0, 1], got {frame.dtype}")
    return to_uint8(frame)


def to_yuv420p(rgb: np.ndarray) -> av.VideoFrame:
    """uint8 RGB ``[H, W, 3]`` as a BT.709 limited-range yuv420p frame, converted on this thread:
    swscale's own threads (one per core by default) cost far more than they save at these sizes
    (on a 16-core Xeon: 6.5x slower at 256², 2.7x at 512², with 4-10x the CPU time)."""
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=_BT709, dst_color_range=_LIMITED_RANGE,
        dst_color_trc=_BT709, dst_color_primaries=_BT709, threads=1,
    )  # fmt: skip


def remove_stale_partials(path: Path) -> list[Path]:
    """Delete the partial outputs beside ``path`` left by writers whose process is gone (a
    SIGKILL, a power cut): ``.NAME.PID.partial.mp4`` files for an MP4 ``path``, else
    ``.NAME.PID.partial`` folders (what the training harness and ``being batch`` write before
    renaming). Those of live processes stay. Returns what was removed."""
    ext = ".partial.mp4" if path.suffix.lower() == ".mp4" else ".partial"
    removed = []
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*{ext}"):
        pid = tmp.name[len(path.name) + 2:-len(ext)]
        if pid.isdigit() and not _alive(int(pid)):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


class Mp4Writer:
    """Encode RGB frames (and optionally the original audio) into ``path``.

    fps:     frames per second; fractional rates such as 30000/1001 are kept exact
    size:    (width, height), both even (yuv420p halves chroma resolution)
    audio:   float32 ``[C, N]`` (or ``[N]``) at ``audio_rate`` Hz, muxed as AAC; None for silent video
    crf:     quality, 0..51, lower is better: libx264's constant rate factor; for NVENC the target
             quality of its constant-quality VBR mode (``cq``, at least 1: NVENC's 0 means "automatic")
    encoder: "auto" (NVENC when it opens, else libx264), "libx264" or "h264_nvenc"
    preset:  None for the encoder's default (``DEFAULT_X264_PRESET``, ``DEFAULT_NVENC_PRESET``), an
             x264 preset, or an NVENC preset p1..p7 (see ``resolve_encoder``)

    Both encoders write yuv420p with BT.709 tags in limited range, one frame per tick of ``1/fps``
    (pts = frame index). ``encoder`` and ``preset`` hold what was used.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        size: tuple[int, int],
        audio: np.ndarray | None = None,
        audio_rate: int | None = None,
        crf: int = 18,
        preset: str | None = None,
        encoder: str = "auto",
    ) -> None:
        self.path = check_output_path(path)
        width, height = int(size[0]), int(size[1])
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise InputError(
                f"video size {width}x{height} cannot be encoded: H.264 yuv420p needs an even width and height",
                hint="pick an even size, e.g. 512x512",
            )
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf}")
        self.encoder, self.preset = resolve_encoder(encoder, preset)
        self.crf = int(crf)
        self._fps = Fraction(fps).limit_denominator(1001)  # same rounding as types.frames_for
        self._size = (width, height)
        self._frames = 0
        self._state = "open"  # -> "finished" | "aborted"
        self._audio, self._audio_rate = self._prepare_audio(audio, audio_rate)
        self._audio_pos = 0  # samples of self._audio already sent to the encoder
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial.mp4")
        remove_stale_partials(self.path)
        try:
            self._open()
        except BaseException:
            self.abort()
            raise

    @staticmethod
    def _prepare_audio(audio: np.ndarray | None, rate: int | None) -> tuple[np.ndarray | None, int]:
        """[C<=2, N] float32 at an AAC rate: >2 channels downmix to mono, odd rates go to 48 kHz."""
        if audio is None:
            return None, 0
        if rate is None or rate <= 0:
            raise ValueError(f"audio_rate must be a positive int when audio is given, got {rate}")
        a = np.asarray(audio, dtype=np.float32)
        a = a[None] if a.ndim == 1 else a
        if a.ndim != 2 or a.shape[0] == 0:
            raise ValueError(f"audio must be [C, N], got shape {list(np.shape(audio))}")
        if a.shape[0] > 2:
            a = a.mean(axis=0, keepdims=True)
        out_rate = rate if rate in AAC_RATES else 48000
        return np.ascontiguousarray(resample(a, rate, out_rate)), out_rate

    def _open(self) -> None:
        # +faststart moves the index to the front at close so players can start before the end.
        self._container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        if self.encoder == "h264_nvenc":
            # Constant-quality VBR with no bit-rate target (bit_rate 0 below): NVENC's nearest to x264's CRF.
            options = {"preset": self.preset, "tune": "hq", "rc": "vbr", "cq": str(max(1, self.crf)),
                       "profile": "high"}
        else:
            options = {"crf": str(self.crf), "preset": self.preset}
        v = self._container.add_stream(self.encoder, rate=self._fps, options=options)
        v.width, v.height = self._size
        v.pix_fmt = "yuv420p"
        cc = v.codec_context
        cc.time_base = 1 / self._fps  # pts = frame index
        cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = _BT709, _BT709, _BT709, _LIMITED_RANGE
        if self.encoder == "h264_nvenc":
            cc.bit_rate = 0
        cc.open()  # now, so a failure to open is raised here and not at the first frame
        self._video = v
        self._astream = None
        if self._audio is not None:
            channels = self._audio.shape[0]
            a = self._container.add_stream("aac", rate=self._audio_rate, layout="mono" if channels == 1 else "stereo")
            # 96 kb/s per channel is transparent for speech; the encoder caps bits per frame at low rates.
            a.bit_rate = min(96_000, 5 * self._audio_rate) * channels
            self._astream = a

    @property
    def frames_written(self) -> int:
        return self._frames

    def write(self, frame: np.ndarray | torch.Tensor) -> None:
        """Append one frame: uint8 ``[H, W, 3]`` or float ``[H, W, 3]`` in [0, 1] on any device."""
        if self._state != "open":
            raise RuntimeError(f"Mp4Writer for '{self.path}' is already {self._state}")
        vf = to_yuv420p(_to_rgb24(frame, self._size[1], self._size[0]))
        vf.pts, vf.time_base = self._frames, 1 / self._fps
        try:
            self._mux(self._video.encode(vf))
            self._frames += 1
            # Keep audio level with video so the muxer never queues a whole stream in memory.
            self._write_audio(round(self._frames * self._audio_rate / self._fps))
        except BaseException:
            self.abort()
            raise

    def _mux(self, packets: list[av.Packet]) -> None:
        for p in packets:
            self._container.mux(p)

    def _write_audio(self, until: int, final: bool = False) -> None:
        """Encode audio samples up to ``until`` in whole AAC frames (the tail too if ``final``)."""
        if self._audio is None or self._astream is None:
            return
        until = min(until, self._audio.shape[1])
        layout = "mono" if self._audio.shape[0] == 1 else "stereo"
        while self._audio_pos < until and (final or self._audio_pos + _AAC_FRAME <= until):
            start, stop = self._audio_pos, min(self._audio_pos + _AAC_FRAME, until)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(self._audio[:, start:stop]), format="fltp", layout=layout)
            af.sample_rate, af.pts, af.time_base = self._audio_rate, start, Fraction(1, self._audio_rate)
            self._mux(self._astream.encode(af))
            self._audio_pos = stop

    def finish(self, expected_frames: int | None = None) -> Path:
        """Flush, close and rename onto ``path``; abort + RuntimeError if the frame count is wrong."""
        if self._state != "open":
            raise RuntimeError(f"Mp4Writer for '{self.path}' is already {self._state}")
        if expected_frames is not None and expected_frames != self._frames:
            self.abort()
            raise RuntimeError(f"'{self.path}': wrote {self._frames} frames but {expected_frames} were expected")
        if self._frames == 0:
            self.abort()
            raise RuntimeError(f"'{self.path}': no frames were written")
        try:
            self._write_audio(self._audio.shape[1] if self._audio is not None else 0, final=True)
            if self._astream is not None:
                self._mux(self._astream.encode(None))
            self._mux(self._video.encode(None))
            self._container.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._state = "finished"
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file. Idempotent; does nothing after ``finish()``."""
        if self._state == "finished":
            return
        self._state = "aborted"
        container = getattr(self, "_container", None)
        if container is not None:
            self._container = None
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away anyway
                pass
        if hasattr(self, "_tmp"):
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.abort()  # no-op after finish(); otherwise nothing half-written survives the block
