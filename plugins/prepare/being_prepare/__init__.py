"""being prepare: from a person's raw video to a tracked, masked dataset in one command.

Stages (each a module): ``decode`` (frames and audio), ``landmarks`` (mediapipe face mesh,
smoothed), ``crop`` (a stable square around the head), ``masks`` (person, head, mouth interior,
background plate), ``embedding`` + ``tracking`` (the FLAME-format head fitted to the landmarks,
then refined photometrically), ``writer`` (metrical-tracker layout plus Being's sidecar) and
``report`` (reprojection errors, plots, an overlay video). See docs/prepare.md.
"""

__version__ = "0.1.0"
