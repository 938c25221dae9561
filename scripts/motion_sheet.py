"""The docs' sheet of the default talking head's motion: head range, a blink, the neck join.

Runs `being run` (the defaults: viseme -> splatting -> static, 512x512) on a held-out clip, then
writes docs/images/viseme-contact-sheet.png with three rows, each tile labelled with its frame
number and time:

1. head motion range: the frames of least and most pitch and yaw over the clip (from the viseme
   model's motion, global_rot + neck), and the first frame, at half size;
2. a blink: the seven frames around the most closed one, the eyes cropped, at 1.5x;
3. the neck join at full resolution (1:1), at the frame of most pitch and of most yaw.

    python scripts/motion_sheet.py [--clip ../shared/data/speech/librivox/...-0880.wav]
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

from contact_sheet import contact_sheet, draw_label, read_frames, resize  # noqa: E402

CLIP = REPO.parent / "shared/data/speech/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"
#: Crops of the 512x512 default framing (rows, columns): both eyes; the neck where head meets torso.
EYES = (slice(128, 192), slice(166, 346))
NECK = (slice(300, 492), slice(136, 376))


def stack_rows(rows: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Sheets of any width one above the other, left-aligned on white."""
    width = max(r.shape[1] for r in rows)
    out = np.full((sum(r.shape[0] for r in rows) + gap * (len(rows) - 1), width, 3), 255, np.uint8)
    y = 0
    for r in rows:
        out[y : y + r.shape[0], : r.shape[1]] = r
        y += r.shape[0] + gap
    return out


def labelled(frames: list[tuple[int, float, np.ndarray]], crop=None, scale: float = 1.0) -> list[np.ndarray]:
    tiles = []
    for index, time, image in frames:
        tile = resize(np.ascontiguousarray(image[crop] if crop else image), scale)
        draw_label(tile, f"#{index} {time:.2f}s", 2)
        tiles.append(tile)
    return tiles


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", type=Path, default=CLIP)
    p.add_argument("--out", type=Path, default=REPO / "docs/images/viseme-contact-sheet.png")
    args = p.parse_args()

    from being_audio_viseme.evaluate import read_wav
    from being_audio_viseme.model import VisemeModel
    from being_audio_viseme.spec import VisemeConfig
    from being_kernel.media import write_png
    from being_kernel.types import Audio

    motion = VisemeModel(VisemeConfig()).generate(Audio(read_wav(args.clip), 16000))
    angles = np.degrees((motion.global_rot + motion.neck).numpy())  # [T, 3] pitch, yaw, roll
    pitch, yaw = angles[:, 0], angles[:, 1]
    extremes = [0, int(pitch.argmin()), int(pitch.argmax()), int(yaw.argmin()), int(yaw.argmax())]
    lids = motion.eyelids[:, 0].numpy()
    k = int(lids.argmax())
    blink = [i for i in range(k - 3, k + 4) if 0 <= i < len(lids)]
    print(f"pitch {pitch.min():+.1f}..{pitch.max():+.1f} deg, yaw {yaw.min():+.1f}..{yaw.max():+.1f} deg; "
          f"blink frames {blink[0]}-{blink[-1]} (closed {lids[k]:.2f} at #{k})")

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "talk.mp4"
        subprocess.run([sys.executable, "-m", "being_kernel.cli", "run", "-q", "--input", str(args.clip),
                        "--out", str(video)], check=True)
        rows = [
            contact_sheet(labelled(read_frames(video, extremes, None), scale=0.5), columns=len(extremes)),
            contact_sheet(labelled(read_frames(video, blink, None), EYES, 1.5), columns=4),
            contact_sheet(labelled(read_frames(video, [int(pitch.argmax()), int(np.abs(yaw).argmax())], None), NECK),
                          columns=2),
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print("wrote", write_png(args.out, stack_rows(rows)))


if __name__ == "__main__":
    main()
