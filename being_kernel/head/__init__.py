"""Head models in the FLAME layout: the array container (``data``), skinning (``flame``),
triangle geometry (``geometry``), safe loaders and the own format (``loaders``), and the
procedural demo head (``demo_head``). See docs/head-model.md and docs/demo-head.md."""
