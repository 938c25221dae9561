"""``being prepare`` end to end: a video or a photo in, a tracked dataset out (see docs/prepare.md).

A photo is a one-frame clip, checked harder (its one face must be whole and large), that also
gets a scene (``scene/``: the photo's background plate and torso layer, and where its neck is),
so its avatar can be put back into it.

Passes over the video: (1) decode and detect landmarks on the source frames, (2) decode again,
crop, segment and write images and masks, then track on the landmarks (and the written images
for the photometric stage) and write the tracking, the background plate and the report. The
source frames are never all held in memory. Everything is written into a hidden directory beside
``out`` that is renamed to ``out`` only when complete: an error, Ctrl-C or SIGTERM leaves nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from being_kernel import InputError
from being_kernel.api import default_device, resolve_device
from being_kernel.datasets import (CHECKPOINT_DIR, HEAD_DIR, IMAGE_DIR, MASK_DIR, PERSON_DIR, SIDECAR, SIDECAR_FORMAT,
                                   SIDECAR_VERSION, TORSO_DIR, check_dataset_out, make_frame, writing_dataset)
from being_kernel.head import HeadModelData
from being_kernel.media import read_image, write_png

from . import __version__
from .crop import Crop, choose_crop
from .decode import VideoInfo, extract_audio, probe_video, read_frames
from .photo import check_face, is_photo, read_photo
from .embedding import LandmarkEmbedding, find_embedding
from .landmarks import FaceFollower, FaceLandmarker, LandmarkTrack, build_track
from .tracking import TrackingConfig, TrackingResult

#: the dataset's own folders beside metrical-tracker's checkpoint/, input/ and alpha/
MOUTH_DIR = "masks/mouth"
REPORT_DIR = "report"
#: a face whose landmarks cover less than this fraction of the crop is too small to track well
MIN_FACE_PX = 48
#: photometric steps per scale for a single photo (a clip's count comes from its epochs): enough
#: for the one view's colours and pose to settle
PHOTO_PHOTOMETRIC_STEPS = 150
#: the scene (background plate and torso layer) of a photo is kept at most this long on its long side
SCENE_MAX_SIDE = 1024
#: frame rate a photo's one-frame dataset declares (the motion rate avatars are driven at)
PHOTO_FPS = 25.0

Frames = Callable[[], Iterator[tuple[int, float, np.ndarray]]]  # () -> (index, seconds, RGB uint8 [H, W, 3])


@dataclass(frozen=True)
class Source:
    """What is prepared: a video, or a photo (one frame, decoded once and kept)."""

    path: Path
    info: VideoInfo
    frames: Frames
    photo: np.ndarray | None = None  # uint8 [H, W, 3], upright, for a photo


@dataclass
class PrepareOptions:
    """What ``being prepare`` does; the CLI's options (``being prepare --help``)."""

    start: float | None = None
    end: float | None = None
    fps: float | None = None
    size: int = 512
    full_frame: bool = False
    focal: float | None = None  # source-video pixels
    face: int | None = None
    head_model: str = "auto"  # auto, demo, flame2020, flame2023 or a FLAME .pkl
    embedding: str | None = None
    device: str = "auto"
    photometric: bool = True
    photometric_epochs: float | None = None  # None: 6 on a GPU, 3 on the CPU (each a pass over the clip)
    drop_failed: bool = False
    test_frames: int | None = None
    overlay: bool = True
    overwrite: bool = False
    progress: bool = True
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


@dataclass
class PrepareSummary:
    """What was written: ``out``, frame counts, the head model, the timings per stage (seconds)."""

    out: Path
    frames: int
    failed: list[int]
    jumps: list[int]
    dropped: list[int]
    head_model: str
    focal_source_px: float
    reprojection_px_median: float
    seconds: dict[str, float]
    notes: list[str]


def _head_model(ref: str, notes: list[str]) -> tuple[HeadModelData, str, Path | None]:
    """The head model to track and its dataset reference; ``auto``: FLAME 2020 when found (the
    user's file), else the demo head, with a note."""
    from being_kernel.head import find_flame_model, resolve_head_model

    if ref == "auto":
        try:
            path = find_flame_model(version="2020")
        except InputError:
            notes.append("FLAME 2020 not found ($BEING_FLAME_DIR or ~/.cache/being/flame); tracking the demo head "
                         "(see docs/prepare.md to use FLAME)")
            return resolve_head_model("demo"), "demo", None
        return resolve_head_model(str(path)), "flame2020", path.parent
    if ref in ("flame2020", "flame2023"):
        path = find_flame_model(version=ref[-4:])
        return resolve_head_model(str(path)), ref, path.parent
    head = resolve_head_model(ref)
    p = Path(ref).expanduser()
    return head, ("demo" if ref == "demo" else str(p.resolve())), (p.parent if p.is_file() else None)


def _video_source(video: Path, opts: PrepareOptions) -> Source:
    info = probe_video(video)
    return Source(video, info, lambda: read_frames(video, start=opts.start, end=opts.end, fps=opts.fps))


def _photo_source(path: Path, opts: PrepareOptions, say: Callable[[str], None]) -> Source:
    for name in ("start", "end", "fps"):
        if getattr(opts, name) is not None:
            raise InputError(f"--{name}: '{path}' is a photo, it has no time line", hint=f"leave out --{name}")
    rgb = read_photo(path, say)
    h, w = rgb.shape[:2]
    info = VideoInfo(path=path, width=w, height=h, fps=PHOTO_FPS, duration_s=1 / PHOTO_FPS, rotation=0,
                     has_audio=False)
    return Source(path, info, lambda: iter([(0, 0.0, rgb)]), photo=rgb)


def _detect(src: Source, opts: PrepareOptions, say: Callable[[str], None]) -> tuple[LandmarkTrack, float]:
    """Pass 1: the chosen face's landmarks in every frame (source pixels) and the frame rate."""
    follower = FaceFollower(opts.face)
    raw: list[np.ndarray | None] = []
    info = src.info
    duration = (opts.end or info.duration_s) - (opts.start or 0.0)
    fps = opts.fps or info.fps
    with FaceLandmarker() as landmarker, tqdm(total=max(1, round(duration * fps)), unit="frame", desc="landmarks",
                                              disable=not opts.progress) as bar:
        for _, _, rgb in src.frames():
            raw.append(follower.choose(landmarker(rgb)))
            bar.update()
    if follower.note:
        say(f"note: {follower.note}")
    if src.photo is not None:
        check_face(raw[0], info.width, info.height, src.path)
    return build_track(raw, fps), fps


def _person_mask(person: np.ndarray, head: np.ndarray, full_frame: bool) -> np.ndarray:
    """What the dataset's alpha/ holds: the whole person for full frames (torso methods train on
    it); for head crops the head and neck: the person minus what lies below the head mask's
    lowest row plus a neck's length, so shoulders and clothes are not part of the avatar."""
    if full_frame:
        return person
    rows = np.flatnonzero(head.max(1) > 0.5)
    if len(rows) == 0:
        return person
    top, bottom = rows[0], rows[-1]
    neck_end = int(bottom + 0.35 * (bottom - top))
    out = person.copy()
    out[neck_end:] = 0
    return np.maximum(out, head)


def _torso_mask(person: np.ndarray, head: np.ndarray) -> np.ndarray:
    """The person less the head (neck, shoulders, clothes), as full-frame datasets hold it."""
    return np.clip(person * (1.0 - head), 0.0, 1.0).astype(np.float32)


def _write_frames(src: Source, opts: PrepareOptions, crop: Crop, points: np.ndarray, tmp: Path) -> np.ndarray:
    """Pass 2: crop, segment, write input/, alpha/ and masks/; returns the background plate.
    points [T, 478, 2]: the landmarks in output pixels."""
    from .masks import PersonSegmenter, background_plate, head_mask, mouth_mask

    for d in (IMAGE_DIR, MASK_DIR, PERSON_DIR, HEAD_DIR, TORSO_DIR, MOUTH_DIR):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    crops, persons = [], []
    n = len(points)
    keep_every = max(1, n // 60)  # the plate needs up to 60 frames spread over the clip
    # PNG encoding (five images a frame) runs in FFmpeg outside the GIL: threads overlap it with
    # the segmentation of the next frame
    with PersonSegmenter() as segment, ThreadPoolExecutor(4) as pool, \
            tqdm(total=n, unit="frame", desc="crop and masks", disable=not opts.progress) as bar:
        pending: list[Future] = []
        for k, _, rgb in src.frames():
            if k >= n:
                break
            image = crop.apply(rgb)
            person = segment(image)
            head = head_mask(person, points[k])
            name = f"{k:05d}.png"
            for folder, pixels in ((IMAGE_DIR, image), (MASK_DIR, _person_mask(person, head, opts.full_frame)),
                                   (PERSON_DIR, person), (HEAD_DIR, head), (TORSO_DIR, _torso_mask(person, head)),
                                   (MOUTH_DIR, mouth_mask(points[k], opts.size, opts.size))):
                pending.append(pool.submit(write_png, tmp / folder / name, pixels))
            if len(pending) > 40:  # bounded: a few frames in flight
                for done in pending[:20]:
                    done.result()
                del pending[:20]
            if k % keep_every == 0:
                crops.append(image)
                persons.append(person)
            bar.update()
        for done in pending:
            done.result()
    plate, _ = background_plate(crops, persons)
    return plate


def _track(head: HeadModelData, emb: LandmarkEmbedding, track: LandmarkTrack, crop: Crop, info: VideoInfo,
           opts: PrepareOptions, tmp: Path, device: torch.device, seconds: dict[str, float]) -> TrackingResult:
    from .photometric import PhotometricRefiner
    from .tracking import Tracker

    long_side = max(info.width, info.height)
    cfg = replace(opts.tracking, device=str(device),
                  focal_init=0.8 * long_side * crop.scale,  # a phone or webcam: ~64° across the long side
                  focal=None if opts.focal is None else opts.focal * crop.scale)
    pts = crop.to_output(track.points)
    tracker = Tracker(head, emb, cfg, pts, track.found, crop.principal_point(info.width, info.height), opts.size)
    with tqdm(total=cfg.rigid_steps + cfg.full_steps, unit="step", desc="tracking: landmarks",
              disable=not opts.progress) as bar:
        start = time.perf_counter()
        tracker.fit_landmarks(progress=lambda stage, step, steps: bar.update())
        seconds["tracking_landmarks"] = time.perf_counter() - start
    if opts.photometric:
        def frames(ids: list[int]) -> torch.Tensor:
            return torch.from_numpy(np.stack([read_image(tmp / IMAGE_DIR / f"{i:05d}.png") for i in ids])).float() / 255

        start = time.perf_counter()
        refiner = PhotometricRefiner(tracker, frames)
        bars: dict[str, tqdm] = {}

        def tick(stage: str, step: int, steps: int) -> None:
            if stage not in bars:
                for bar in bars.values():
                    bar.close()
                bars[stage] = tqdm(total=steps, unit="step", desc=f"tracking: {stage}", disable=not opts.progress)
            bars[stage].update()
        try:
            epochs = opts.photometric_epochs or (6.0 if device.type == "cuda" else 3.0)
            refiner.refine(scales=(opts.size // 4, opts.size // 2), epochs=epochs, progress=tick,
                           min_steps=PHOTO_PHOTOMETRIC_STEPS if tracker.T == 1 else 1)
        finally:
            for bar in bars.values():
                bar.close()
        seconds["tracking_photometric"] = time.perf_counter() - start
    return tracker.result(crop.to_output(track.raw))


def _write_tracking(res: TrackingResult, keep: np.ndarray, size: int, tmp: Path) -> None:
    """checkpoint/NNNNN.frame for the kept frames; a dropped frame keeps no image or mask either."""
    (tmp / CHECKPOINT_DIR).mkdir(exist_ok=True)
    for k in np.flatnonzero(keep):
        payload = make_frame(exp=res.expression[k], shape=res.shape, jaw=res.jaw[k], eyes=res.eyes[k],
                             eyelids=res.eyelids[k], R=res.R[k], t=res.t[k], K=res.K, width=size, height=size,
                             frame_id=f"{k:05d}")
        torch.save(payload, tmp / CHECKPOINT_DIR / f"{k:05d}.frame")
    for k in np.flatnonzero(~keep):
        for d in (IMAGE_DIR, MASK_DIR, PERSON_DIR, HEAD_DIR, TORSO_DIR, MOUTH_DIR):
            (tmp / d / f"{k:05d}.png").unlink(missing_ok=True)


def _identity_head(head: HeadModelData, res: TrackingResult, tmp: Path) -> HeadModelData:
    """The demo head with the fitted identity deformation, saved in the dataset as head_model/."""
    from being_kernel.head import save_head_model

    shaped = replace(head, v_template=(head.v_template + res.identity).astype(np.float32),
                     name=f"{head.name} (fitted identity)")
    save_head_model(shaped, tmp / "head_model")
    return shaped


def _write_scene(src: Source, res: TrackingResult, head: HeadModelData, track: LandmarkTrack, crop: Crop, fps: float,
                 tmp: Path) -> None:
    """A photo's scene (being_kernel.datasets.Scene) in tmp/scene: the photo at most SCENE_MAX_SIDE
    long with the person inpainted away (the plate), the person below the head (the torso layer:
    the person less the part of the head the tracked mesh covers: the photo's own neck, shoulders
    and clothes, and the hair that stands out beyond the skull, which the avatar's Gaussians on
    the mesh cannot reach), and where the tracked head's neck base (root joint) lies in it and at
    what scale, so a compositor puts the avatar's head where the photo's was."""
    from PIL import Image

    from being_kernel.api import Cameras
    from being_kernel.datasets import SCENE_DIR, write_scene
    from being_kernel.head import FlameModel
    from being_kernel.render import render_mesh

    from .masks import PersonSegmenter, background_plate, head_mask

    h, w = src.photo.shape[:2]
    s = min(1.0, SCENE_MAX_SIDE / max(w, h))
    W, H = max(2, 2 * round(w * s / 2)), max(2, 2 * round(h * s / 2))  # even: the video's size
    rgb = np.asarray(Image.fromarray(src.photo).resize((W, H), Image.LANCZOS)) if (W, H) != (w, h) else src.photo
    sx, sy = W / w, H / h
    with PersonSegmenter() as segment:
        person = segment(rgb)
    plate, _ = background_plate([rgb], [person])
    with torch.no_grad():
        posed = FlameModel(head)(res.motion(head, fps), torch.from_numpy(res.shape).float() if res.shape.size else None)
    root = posed.joints[0, 0].double().numpy()
    # the tracked camera in scene pixels: dataset pixels -> photo pixels -> scene pixels
    K = res.K / crop.scale
    K[:2, 2] += [crop.x0, crop.y0]
    K[:2] *= np.array([[sx], [sy]])
    K[2] = [0.0, 0.0, 1.0]
    f32 = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()[None]  # noqa: E731
    silhouette = render_mesh(posed.vertices[0], torch.from_numpy(head.faces), Cameras(f32(res.R[0]), f32(res.t[0]),
                             f32(K), W, H), supersample=2).alpha[0, ..., 0].numpy()
    head_part = head_mask(person, track.points[0] * [sx, sy]) * silhouette
    torso = np.concatenate([rgb, np.round(np.clip(person - head_part, 0, 1) * 255).astype(np.uint8)[..., None]], -1)
    cam = res.R[0] @ root + res.t[0]
    neck_out = (res.K @ (cam / cam[2]))[:2]  # dataset pixels
    neck_src = neck_out / crop.scale + np.array([crop.x0, crop.y0])
    px_per_m = float(res.K[0, 0] / cam[2] / crop.scale * sx)
    write_scene(tmp / SCENE_DIR, plate, torso, (float(neck_src[0] * sx), float(neck_src[1] * sy)), px_per_m,
                source=str(src.path.resolve()))


def prepare_video(video: str | Path, out: str | Path, opts: PrepareOptions | None = None,
                  say: Callable[[str], None] = print) -> PrepareSummary:
    """Prepare ``video`` into the dataset directory ``out`` (see the module doc)."""
    from .report import detect_jumps, head_euler_deg, interpolate_frames, plot_tracking, write_overlay, write_quality

    opts = opts or PrepareOptions()
    video, out = Path(video).expanduser(), Path(out).expanduser().resolve()
    if opts.size < 64 or opts.size % 2:
        raise InputError(f"--size {opts.size}: must be an even number of pixels, at least 64")
    check_dataset_out(out, opts.overwrite)
    src = _photo_source(video, opts, say) if is_photo(video) else _video_source(video, opts)
    info = src.info
    notes: list[str] = []
    head, head_ref, flame_dir = _head_model(opts.head_model, notes)
    emb = find_embedding(head, head_ref if head_ref == "demo" else "flame", opts.embedding, flame_dir)
    device = resolve_device(opts.device) or default_device()
    for note in notes:
        say(f"note: {note}")
    seconds: dict[str, float] = {}
    with writing_dataset(out, opts.overwrite) as tmp:
        start = time.perf_counter()
        track, fps = _detect(src, opts, say)
        seconds["landmarks"] = time.perf_counter() - start
        n = len(track.found)
        crop = choose_crop(track.points, track.found, info.width, info.height, opts.size, opts.full_frame)
        if track.face_size * crop.scale < MIN_FACE_PX * opts.size / 512:
            say(f"warning: the face is small ({track.face_size:.0f} px high in the video); tracking will be coarse")
        start = time.perf_counter()
        plate = _write_frames(src, opts, crop, crop.to_output(track.points), tmp)
        write_png(tmp / "background.png", plate)
        seconds["crop_masks"] = time.perf_counter() - start
        has_audio = extract_audio(video, tmp / "audio.wav", start=opts.start, end=opts.end) if info.has_audio else False
        if not has_audio and src.photo is None:
            say("note: the video has no audio track; the dataset has none (fine for avatars, not for audio models)")

        res = _track(head, emb, track, crop, info, opts, tmp, device, seconds)
        failed = ~track.found
        jumps = detect_jumps(res.R, res.reprojection_px)
        bad = failed | jumps
        if bad.all():
            raise InputError("the head could not be tracked in any frame", hint="check the video shows one face clearly")
        fields = {"R": res.R, "t": res.t, "expression": res.expression, "jaw": res.jaw, "eyes": res.eyes,
                  "eyelids": res.eyelids}
        if bad.any() and not opts.drop_failed:
            for key, value in interpolate_frames(fields, bad).items():
                setattr(res, key, value)
        keep = ~bad if opts.drop_failed else np.ones(n, bool)

        start = time.perf_counter()
        shaped = _identity_head(head, res, tmp) if res.identity is not None else head
        ref = "head_model" if res.identity is not None else head_ref
        if src.photo is not None:
            _write_scene(src, res, shaped, track, crop, fps, tmp)
        test_frames = opts.test_frames if opts.test_frames is not None else min(max(1, round(0.1 * keep.sum())),
                                                                                int(keep.sum()) - 1)
        sidecar = {
            "format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, "head_model": ref, "fps": fps,
            "test_frames": int(test_frames), "layout": "metrical", "full_frame": bool(opts.full_frame),
            **({"audio": "audio.wav"} if has_audio else {}),
            **({"single_view": True, "scene": "scene"} if src.photo is not None else {}),
            "generator": {
                "name": "being prepare", "being_prepare_version": __version__, "source": str(video.resolve()),
                "source_kind": "photo" if src.photo is not None else "video",
                "source_size": [info.width, info.height], "rotation": info.rotation,
                "start": opts.start, "end": opts.end, "crop": asdict(crop), "tracked_head": head_ref,
                "focal_source_px": float(res.K[0, 0] / crop.scale), "focal_given": opts.focal is not None,
                "landmark_embedding": len(emb.mediapipe), "photometric": opts.photometric,
                "failed_frames": np.flatnonzero(failed).tolist(), "jump_frames": np.flatnonzero(jumps).tolist(),
                "bad_frames": "dropped" if opts.drop_failed else "interpolated",
            },
        }
        (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
        seconds["writing"] = time.perf_counter() - start

        start = time.perf_counter()
        report = tmp / REPORT_DIR
        report.mkdir()
        write_quality(report / "quality.json", fps=fps, reprojection_px=res.reprojection_px, failed=failed,
                      jumps=jumps, handled="dropped" if opts.drop_failed else "interpolated",
                      extra={"focal_source_px": float(res.K[0, 0] / crop.scale), "seconds": seconds})
        plot_tracking(report / "tracking.png", fps, euler_deg=head_euler_deg(res.R), translation=res.t, jaw=res.jaw,
                      expression=res.expression, reprojection_px=res.reprojection_px, failed=failed, jumps=jumps)
        if opts.overlay:
            _overlay(res, head, track, crop, tmp, fps, has_audio, write_overlay, device)
        seconds["report"] = time.perf_counter() - start
        _write_tracking(res, keep, opts.size, tmp)
    finite = res.reprojection_px[np.isfinite(res.reprojection_px)]
    return PrepareSummary(out=out, frames=n, failed=np.flatnonzero(failed).tolist(), jumps=np.flatnonzero(jumps).tolist(),
                          dropped=np.flatnonzero(~keep).tolist(), head_model=head_ref,
                          focal_source_px=float(res.K[0, 0] / crop.scale),
                          reprojection_px_median=float(np.median(finite)) if len(finite) else float("nan"),
                          seconds=seconds, notes=notes)


def _overlay(res: TrackingResult, head: HeadModelData, track: LandmarkTrack, crop: Crop, tmp: Path, fps: float,
             has_audio: bool, write_overlay, device: torch.device) -> None:  # noqa: ANN001 - report.write_overlay
    """report/overlay.mp4, the mesh drawn where the tracking ran (the reference renderer works
    in float64, on the GPU too)."""
    from being_kernel.api import Cameras
    from being_kernel.head import FlameModel
    from being_kernel.media import read_audio

    n = len(res.R)
    model = FlameModel(head)
    with torch.no_grad():
        verts = model(res.motion(head, fps), torch.from_numpy(res.shape).float() if res.shape.size else None).vertices
        if res.identity is not None:
            verts = verts + torch.from_numpy(res.identity).float()[None]
    f32 = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    size = crop.size
    cams = Cameras(f32(res.R), f32(res.t), f32(np.broadcast_to(res.K, (n, 3, 3))), size, size)
    images = (read_image(tmp / IMAGE_DIR / f"{k:05d}.png") for k in range(n))
    audio = None
    if has_audio:
        a = read_audio(tmp / "audio.wav")
        audio = (a.samples, a.sample_rate)
    detected = crop.to_output(track.raw)
    write_overlay(tmp / REPORT_DIR / "overlay.mp4", images, verts.double().to(device),
                  torch.from_numpy(head.faces).to(device), cams, fps,
                  landmarks=np.nan_to_num(detected, nan=-1.0), fitted=None, audio=audio)
