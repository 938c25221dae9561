"""The docs' sheet of a photo's avatar talking: docs/images/astronaut-talking.png.

Makes the avatar of scikit-image's astronaut photo (`being avatar from-photo`, unless --avatar
gives one), drives it with the default audio model (`viseme`, with the transcript) on a held-out
synthesized sentence whose phone timing is known, on the photo's own background and torso
(`--torso static`, the avatar's scene), and writes four rows, each tile labelled with its frame
number and time:

1. closed lips: the middle frame of each bilabial (p, b, m) phone, the mouth cropped;
2. open vowels: the frame of widest jaw in each of the longest vowels, the mouth cropped;
3. a blink: the seven frames around the most closed one, the eyes cropped;
4. the photo, and the frames of the largest head turn (most yaw, most pitch) the model produces.

    python scripts/photo_sheet.py [--avatar DIR] [--clip ../shared/data/speech/festival/slt_pamela.wav]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from contact_sheet import contact_sheet, read_frames  # noqa: E402
from motion_sheet import labelled, stack_rows  # noqa: E402

CLIP = REPO.parent / "shared/data/speech/festival/slt_pamela.wav"
VOWELS = {"aa", "ae", "ah", "ao", "aw", "ay", "eh", "ey", "ow", "oy"}


def _segs(path: Path) -> list[tuple[str, float, float]]:
    """(phone, start, end) from a Festival .segs file (END_TIME 100 PHONE per line)."""
    out, start = [], 0.0
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "100":
            end = float(parts[0])
            out.append((parts[2], start, end))
            start = end
    return out


def _box(points: np.ndarray, ids: list[int], half: float, size: tuple[int, int]) -> tuple[slice, slice]:
    """A square crop (rows, columns) of half-side ``half`` pixels around landmarks ``ids``."""
    cx, cy = points[ids].mean(0)
    h, w = size
    y0, x0 = int(np.clip(cy - half, 0, h - 2 * half)), int(np.clip(cx - 2 * half, 0, w - 4 * half))
    return slice(y0, y0 + int(2 * half)), slice(x0, x0 + int(4 * half))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--avatar", type=Path, default=None, help="an avatar made from the astronaut (default: make one)")
    p.add_argument("--clip", type=Path, default=CLIP)
    p.add_argument("--out", type=Path, default=REPO / "docs/images/astronaut-talking.png")
    args = p.parse_args()

    import skimage.data

    from being_audio_viseme.evaluate import read_wav
    from being_audio_viseme.model import VisemeModel
    from being_audio_viseme.spec import VisemeConfig
    from being_kernel.media import write_png
    from being_kernel.types import Audio
    from being_prepare.landmarks import FaceFollower, FaceLandmarker

    text = args.clip.with_suffix(".txt").read_text().strip()
    segs = _segs(args.clip.with_suffix(".segs"))
    motion = VisemeModel(VisemeConfig(text=text)).generate(Audio(read_wav(args.clip), 16000))
    fps, jaw, lids = motion.fps, motion.jaw[:, 0].numpy(), motion.eyelids[:, 0].numpy()
    frame = lambda t: min(len(jaw) - 1, int(t * fps))  # noqa: E731 - the frame shown at time t
    closed = [frame((a + b) / 2) for ph, a, b in segs if ph in ("p", "b", "m")][:6]
    vowels = sorted([s for s in segs if s[0] in VOWELS], key=lambda s: s[1] - s[2])[:6]
    opened = sorted(max(range(frame(a), frame(b) + 1), key=lambda i: jaw[i]) for _, a, b in vowels)
    k = int(lids.argmax())
    blink = [i for i in range(k - 3, k + 4) if 0 <= i < len(lids)]
    angles = np.degrees((motion.global_rot + motion.neck).numpy())
    turns = [int(np.abs(angles[:, 1]).argmax()), int(np.abs(angles[:, 0]).argmax())]
    print(f"closed lips at {closed}, open vowels at {opened}, blink {blink[0]}-{blink[-1]} (lids {lids[k]:.2f}), "
          f"largest yaw {angles[turns[0], 1]:+.1f} deg at {turns[0]}, pitch {angles[turns[1], 0]:+.1f} deg at {turns[1]}")

    with tempfile.TemporaryDirectory() as tmp:
        avatar = args.avatar
        if avatar is None:
            photo = Path(tmp) / "astronaut.png"
            write_png(photo, skimage.data.astronaut())
            avatar = Path(tmp) / "avatar"
            subprocess.run([sys.executable, "-m", "being_kernel.cli", "avatar", "from-photo", str(photo), "--out",
                            str(avatar), "-q"], check=True)
        video = Path(tmp) / "talk.mp4"
        subprocess.run([sys.executable, "-m", "being_kernel.cli", "run", "-q", "--avatar", "splatting", "--set",
                        f"avatar.path={avatar}", "--torso", "static", "--input", str(args.clip), "--text", text,
                        "--out", str(video)], check=True)
        first = read_frames(video, [0], None)[0][2]
        with FaceLandmarker() as landmarker:
            points = FaceFollower().choose(landmarker(first))
        size = first.shape[:2]
        face = float(np.linalg.norm(points[10] - points[152]))
        mouth = _box(points, [13, 14, 61, 291], 0.22 * face, size)
        eyes = _box(points, [33, 133, 263, 362], 0.2 * face, size)
        photo_tile = (0, 0.0, np.ascontiguousarray(skimage.data.astronaut()))
        rows = [
            contact_sheet(labelled(read_frames(video, closed, None), mouth, 2.0), columns=len(closed)),
            contact_sheet(labelled(read_frames(video, opened, None), mouth, 2.0), columns=len(opened)),
            contact_sheet(labelled(read_frames(video, blink, None), eyes, 2.0), columns=4),
            contact_sheet(labelled([photo_tile, *read_frames(video, turns, None)], scale=0.75), columns=3),
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print("wrote", write_png(args.out, stack_rows(rows)))


if __name__ == "__main__":
    main()
