"""docs/images/prepare_astronaut.png: scikit-image's astronaut photo through ``being prepare``.

    .venv/bin/python scripts/prepare_sheet.py [--out docs/images/prepare_astronaut.png]

The photo is turned by known similarity transforms into a 40-frame video
(``being_prepare.testvideo``), prepared at 512², and one frame is shown as: the crop, the person,
head and mouth masks, the background plate, and the fitted head drawn over the frame (the first
frame of report/overlay.mp4 at that index).
"""

import argparse
import tempfile
from pathlib import Path

import av
import numpy as np
import skimage.data

from being_kernel.media import read_image, write_png
from being_prepare.pipeline import PrepareOptions, prepare_video
from being_prepare.testvideo import make_similarity_video, similarity_motion

FRAME = 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/images/prepare_astronaut.png")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = make_similarity_video(skimage.data.astronaut(), tmp / "astro.mp4", similarity_motion(40),
                                      centre=(225.0, 125.0))
        data = tmp / "data"
        prepare_video(video, data, PrepareOptions(size=512, progress=False), say=print)
        name = f"{FRAME:05d}.png"
        rgb = lambda p: np.repeat(p, 3, -1) if p.shape[-1] == 1 else p[..., :3]  # noqa: E731
        tiles = [read_image(data / "input" / name)] + [rgb(read_image(data / d / name))
                                                      for d in ("masks/person", "masks/head", "masks/mouth")]
        tiles.append(read_image(data / "background.png")[..., :3])
        with av.open(str(data / "report" / "overlay.mp4")) as c:
            for k, frame in enumerate(c.decode(video=0)):
                if k == FRAME:
                    tiles.append(frame.to_ndarray(format="rgb24")[:512, :512])
                    break
        sheet = np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:], 1)], 0)
        small = sheet[::2, ::2]  # 768 x 512: enough to see the masks, small in the repository
        write_png(args.out, small)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
