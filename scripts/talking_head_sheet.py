"""The docs' contact sheet of the default talking head, picked by ground truth rather than by eye.

Runs `being run` (viseme -> splatting -> static, the defaults) on a Festival clip, then picks
the frames at the middle of its first three p/b/m phones, the widest frame of its two most open
vowels (phone timing from the clip's .segs), and the frame where a blink is most closed (from the
viseme model's motion), in that order; writes docs/images/talking_head_sheet.png, each tile
labelled with its frame number and time.

    python scripts/talking_head_sheet.py [--clip ../shared/data/speech/festival/slt_fox.wav]
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

from contact_sheet import contact_sheet, draw_label, read_frames  # noqa: E402

OPEN_VOWELS = {"aa", "ae", "ao", "aw", "ay"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", type=Path, default=REPO.parent / "shared/data/speech/festival/slt_fox.wav")
    p.add_argument("--out", type=Path, default=REPO / "docs/images/talking_head_sheet.png")
    args = p.parse_args()

    from being_audio_viseme.evaluate import read_wav
    from being_kernel.metrics.lipsync import read_segs
    from being_audio_viseme.model import VisemeModel
    from being_audio_viseme.spec import VisemeConfig
    from being_kernel.media import write_png
    from being_kernel.types import Audio

    fps = 25.0
    segs = read_segs(args.clip.with_suffix(".segs"))
    motion = VisemeModel(VisemeConfig()).generate(Audio(read_wav(args.clip), 16000))
    jaw = motion.jaw[:, 0].numpy()
    picks = [int(round((a + b) / 2 * fps)) for ph, a, b in segs if ph in ("p", "b", "m")][:3]
    vowels = [range(int(a * fps), min(int(np.ceil(b * fps)) + 1, len(jaw))) for ph, a, b in segs if ph in OPEN_VOWELS]
    widest = sorted((max(v, key=lambda k: jaw[k]) for v in vowels if len(v)), key=lambda k: -jaw[k])[:2]
    picks += sorted(widest) + [int(np.argmax(motion.eyelids[:, 0].numpy()))]

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "talk.mp4"
        subprocess.run([sys.executable, "-m", "being_kernel.cli", "run", "--input", str(args.clip),
                        "--out", str(video)], check=True)
        frames = read_frames(video, picks, None)
    tiles = []
    for index, time, image in frames:
        tile = image.copy()
        draw_label(tile, f"#{index} {time:.2f}s", 3)
        tiles.append(tile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print("wrote", write_png(args.out, contact_sheet(tiles, columns=3)))


if __name__ == "__main__":
    main()
