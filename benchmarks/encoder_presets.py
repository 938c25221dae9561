"""H.264 encoders and presets on real frames of the default talking head (a benchmark, not a test).

    python benchmarks/encoder_presets.py                           # 250 frames at 256² and 512²
    python benchmarks/encoder_presets.py --sizes 512 --frames 100 --json out.json
    python benchmarks/encoder_presets.py --save-frames F           # also keep the frames, losslessly
    python benchmarks/encoder_presets.py --video F/frames_512x512.mkv  # those frames, not rendered again

The frames are made once per size by the default pipeline (``being run``'s plugins: the audio
plugin, the avatar and the torso that ``being plugins`` lists as defaults) from the built-in demo
speech, looped to ``--frames`` frames at 25 fps, and kept in memory as the source. Each row then
writes all of them through ``Mp4Writer`` (silent, crf ``--crf``) and reports:

* encode fps: frames over the wall time of ``Mp4Writer.write`` for every frame plus ``finish``
  (the RGB -> yuv420p conversion, the encoder and the muxer: what ``being run`` pays per frame),
  the best of ``--repeats`` runs after an untimed warm-up of 10 frames, the rows timed in turns;
* CPU ms/frame: the process's CPU time (all threads) over the same runs, per frame, the least of
  them: steadier than wall time on a machine shared with other work, and the cost on any machine
  whose cores are all busy (an encoder's threads then take cores from the pipeline);
* kbit/s: the file's size over the clip's duration at 25 fps;
* PSNR: decoded RGB against the source RGB, the mean over frames of each frame's PSNR (8-bit,
  all channels), and the difference from the ``medium`` row of the same size;
* SSIM: the mean SSIM (``being_kernel.metrics.image.ssim``, 11x11 Gaussian window) over every
  10th frame.

The ``yuv420p only`` row converts to yuv420p and back without encoding: the ceiling of the PSNR
that any H.264 row can reach here, since all of them store yuv420p. ``h264_nvenc`` rows are
added when NVENC opens on this machine (``video_writer.nvenc_available``); otherwise the output
says it did not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from being_kernel.media import video_writer as vw  # noqa: E402
from being_kernel.metrics.image import ssim  # noqa: E402

FPS = 25
X264_ROWS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
NVENC_ROWS = ("p1", "p4", "p7")


class Collect:
    """A frame sink that keeps the frames as uint8 arrays."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def write(self, image: torch.Tensor) -> None:
        self.frames.append(vw._to_rgb24(image, image.shape[0], image.shape[1]).copy())

    def finish(self, expected_frames: int | None = None) -> None:
        return None

    def abort(self) -> None:
        return None


def render_frames(size: int, frames: int, device: str | None) -> list[np.ndarray]:
    """``frames`` frames at ``size``² from the default plugins and the looped demo speech."""
    from being_kernel.discovery import Registry
    from being_kernel.media import demo_speech
    from being_kernel.media.audio_io import resample
    from being_kernel.media.clip import LoadedTriple, select
    from being_kernel.pipeline import run_pipeline
    from being_kernel.types import Audio

    registry = Registry.discover()
    names = {c: registry.default(c) for c in ("audio", "avatar", "torso")}
    values: dict[str, dict] = {"avatar": {"size": [size, size]}, "torso": {"size": [size, size]}}
    if device:
        for c, n in names.items():
            if "device" in registry.spec(c, n).config.model_fields:
                values.setdefault(c, {})["device"] = device
    triple = LoadedTriple.load(select(registry, names, values), registry)
    try:
        info = triple.plugins["audio"].info()
        demo = demo_speech()
        need = int(np.ceil(frames / info.fps * demo.sample_rate)) + 1
        samples = np.tile(demo.samples, need // len(demo.samples) + 1)[:need]
        mono = Audio(resample(samples, demo.sample_rate, info.sample_rate), info.sample_rate)
        sink = Collect()
        a, r, t = (triple.plugins[c] for c in ("audio", "avatar", "torso"))
        run_pipeline(a, r, t, mono, sink, check=triple.check)
    finally:
        triple.close()
    print(f"rendered {len(sink.frames)} frames at {size}x{size} with {'+'.join(names.values())}", file=sys.stderr)
    return sink.frames[:frames]


def video_frames(path: Path, frames: int) -> list[np.ndarray]:
    """The first ``frames`` frames of a video as RGB (exact for a ``--save-frames`` file)."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24") if f.format.name in ("rgb24", "gbrp", "bgr24") else _to_rgb(f))
            if len(out) == frames:
                break
    return out


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """RGB from a frame Mp4Writer wrote (BT.709, limited range), read with those same tags."""
    return frame.reformat(format="rgb24", src_colorspace=vw._BT709, src_color_range=vw._LIMITED_RANGE).to_ndarray()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def quality(decoded: list[np.ndarray], source: list[np.ndarray]) -> tuple[float, float]:
    """(mean PSNR over frames in dB, mean SSIM over every 10th frame)."""
    if len(decoded) != len(source):
        raise RuntimeError(f"decoded {len(decoded)} frames of {len(source)}")
    p = statistics.fmean(_psnr(d, s) for d, s in zip(decoded, source))
    pick = range(0, len(source), 10)
    d = torch.from_numpy(np.stack([decoded[i] for i in pick])).float() / 255
    s = torch.from_numpy(np.stack([source[i] for i in pick])).float() / 255
    return p, float(ssim(d, s).mean())


def yuv_only(source: list[np.ndarray], repeats: int) -> dict:
    """The writer's RGB -> yuv420p conversion alone (best of ``repeats``), and its round trip's quality."""
    seconds = used = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        back = [vw.to_yuv420p(img) for img in source]
        seconds, used = min(seconds, time.perf_counter() - t0), min(used, time.process_time() - c0)
    p, s = quality([_to_rgb(f) for f in back], source)
    return {"encoder": "yuv420p only", "preset": "-", "fps": len(source) / seconds,
            "cpu_ms": 1000 * used / len(source), "kbps": None, "psnr": p, "ssim": s}


def encode_once(source: list[np.ndarray], encoder: str, preset: str, crf: int, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) to write ``source`` to ``out``
    through Mp4Writer (open, every frame, finish)."""
    h, w = source[0].shape[:2]
    t0, c0 = time.perf_counter(), time.process_time()
    writer = vw.Mp4Writer(out, FPS, (w, h), crf=crf, preset=preset, encoder=encoder)
    for img in source:
        writer.write(img)
    writer.finish(expected_frames=len(source))
    return time.perf_counter() - t0, time.process_time() - c0


def encode_rows(source: list[np.ndarray], rows: list[tuple[str, str]], crf: int, repeats: int, folder: Path) -> list[dict]:
    """Each (encoder, preset) of ``rows``: warmed up on 10 frames, then timed ``repeats`` times in
    turns (every row once per round, so a burst of load elsewhere touches them all alike), the
    fastest run counted; size and quality from the last file written."""
    best, cpu = {}, {}
    for enc, preset in rows:
        encode_once(source[:10], enc, preset, crf, folder / "warm.mp4")
        best[enc, preset] = cpu[enc, preset] = float("inf")
    for _ in range(repeats):
        for enc, preset in rows:
            wall, used = encode_once(source, enc, preset, crf, folder / f"{enc}-{preset}.mp4")
            best[enc, preset], cpu[enc, preset] = min(best[enc, preset], wall), min(cpu[enc, preset], used)
    out = []
    for enc, preset in rows:
        path = folder / f"{enc}-{preset}.mp4"
        kbps = path.stat().st_size * 8 / (len(source) / FPS) / 1000
        with av.open(str(path)) as c:
            decoded = [_to_rgb(f) for f in c.decode(video=0)]
        p, s = quality(decoded, source)
        out.append({"encoder": enc, "preset": preset, "fps": len(source) / best[enc, preset],
                    "cpu_ms": 1000 * cpu[enc, preset] / len(source), "kbps": kbps, "psnr": p, "ssim": s})
    return out


def save_lossless(frames: list[np.ndarray], path: Path) -> None:
    """``frames`` as lossless RGB H.264 (libx264rgb, qp 0), checked by decoding them back."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264rgb", rate=FPS, options={"qp": "0", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = w, h, "rgb24"
        for img in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    back = video_frames(path, len(frames))
    if len(back) != len(frames) or any(not np.array_equal(a, b) for a, b in zip(back, frames)):
        raise RuntimeError(f"{path}: the frames did not come back exactly")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
    libs = av.library_versions
    return (f"{cpu}, {os.cpu_count()} CPUs visible, {gpu}; PyAV {av.__version__} "
            f"(libavcodec {'.'.join(map(str, libs['libavcodec']))}), torch {torch.__version__}")


def table(rows: list[dict]) -> str:
    lines = ["| size | encoder | preset | encode fps | CPU ms/frame | kbit/s | size vs medium | PSNR dB | vs medium | SSIM |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ref = next((m for m in rows if m["size"] == r["size"] and m["preset"] == "medium"), None)
        rel = f"{r['kbps'] / ref['kbps']:.2f}x" if ref and r["kbps"] else "-"
        dp = f"{r['psnr'] - ref['psnr']:+.2f}" if ref else "-"
        kb = f"{r['kbps']:.0f}" if r["kbps"] else "-"
        lines.append(f"| {r['size']} | {r['encoder']} | {r['preset']} | {r['fps']:.0f} | {r['cpu_ms']:.2f} | {kb} | {rel} | "
                     f"{r['psnr']:.2f} | {dp} | {r['ssim']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="256,512", help="square frame sizes, comma-separated (default 256,512)")
    ap.add_argument("--frames", type=int, default=250, help="frames per size (default 250: 10 s at 25 fps)")
    ap.add_argument("--crf", type=int, default=18, help="crf for x264, cq for NVENC (default 18)")
    ap.add_argument("--presets", default=",".join(X264_ROWS), help="x264 presets to time")
    ap.add_argument("--nvenc-presets", default=",".join(NVENC_ROWS), help="NVENC presets to time when it opens")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per row; the fastest counts (default 5)")
    ap.add_argument("--device", default=None, help="device for the plugins that take one (default: theirs)")
    ap.add_argument("--video", type=Path, action="append", default=[],
                    help="take the frames from this video instead of rendering them (repeatable; each at its own "
                         "size): a --save-frames file gives the rendered frames exactly")
    ap.add_argument("--save-frames", type=Path, default=None,
                    help="also save the rendered frames of each size here as lossless RGB H.264, frames_NxN.mkv")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args()

    nvenc = vw.nvenc_available()
    rows: list[dict] = []
    if args.video:
        sources = [video_frames(v, args.frames) for v in args.video]
    else:
        sources = [render_frames(int(s), args.frames, args.device) for s in args.sizes.split(",")]
        if args.save_frames:
            args.save_frames.mkdir(parents=True, exist_ok=True)
            for src in sources:
                save_lossless(src, args.save_frames / f"frames_{src[0].shape[1]}x{src[0].shape[0]}.mkv")
    wanted = [("libx264", p) for p in args.presets.split(",")]
    if nvenc:
        wanted += [("h264_nvenc", p) for p in args.nvenc_presets.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            h, w = source[0].shape[:2]
            size = f"{w}²" if w == h else f"{w}x{h}"
            for r in [yuv_only(source, args.repeats)] + encode_rows(source, wanted, args.crf, args.repeats, Path(tmp)):
                r.update(size=size, frames=len(source))
                rows.append(r)
                print(f"{size}: {r['encoder']} {r['preset']}: {r['fps']:.0f} fps, PSNR {r['psnr']:.2f}", file=sys.stderr)

    print(f"Machine: {machine()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"Command: python benchmarks/encoder_presets.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"Frames: {rows[0]['frames']} per size, crf {args.crf}, best of {args.repeats} timed runs")
    print("h264_nvenc: " + ("opened; its rows use rc=vbr, cq=crf, tune hq, profile high" if nvenc else
                            "did not open here (no NVIDIA GPU with NVENC, no driver, or not in this FFmpeg build): no rows"))
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "crf": args.crf, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
