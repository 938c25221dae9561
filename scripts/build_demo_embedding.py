"""Write the demo head's built-in mediapipe landmark embedding (plugins/prepare/being_prepare/data/).

    .venv/bin/python scripts/build_demo_embedding.py

Renders the demo head from the views in ``being_prepare.embedding.VIEWS``, runs mediapipe's face
mesh on each render and lifts the landmarks onto the surface (see that module). Rerun it when the
demo head's geometry or texture changes; it prints how many landmarks were kept.
"""

from pathlib import Path

import numpy as np

from being_kernel.head.demo_head import build_demo_head
from being_prepare.embedding import DEMO_FILE, build_embedding, save_embedding
from being_prepare.landmarks import FaceLandmarker

OUT = Path(__file__).resolve().parents[1] / "plugins" / "prepare" / "being_prepare" / "data" / DEMO_FILE


def main() -> None:
    head = build_demo_head()
    with FaceLandmarker(max_faces=1) as landmarker:
        emb, spread = build_embedding(head, lambda rgb: (landmarker(rgb) or [None])[0])
    save_embedding(emb, OUT)
    print(f"{OUT}: {len(emb.mediapipe)} of 478 landmarks kept; spread across views median "
          f"{np.median(spread) * 1000:.2f} mm, max {spread.max() * 1000:.2f} mm")


if __name__ == "__main__":
    main()
