"""Example Being plugin: an AudioToFlame that nods the head on loud syllables."""
