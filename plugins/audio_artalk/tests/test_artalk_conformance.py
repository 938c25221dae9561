"""The kernel's conformance suite on the artalk plugin found through its entry point, with a tiny
random-weight model of the same architecture written at collection time."""

import atexit
import shutil
import tempfile
from pathlib import Path

from being_audio_artalk.testing import write_random_weights
from being_kernel.testing import conformance_suite


_WEIGHTS = write_random_weights(Path(tempfile.mkdtemp(prefix="being-artalk-")) / "weights")
atexit.register(shutil.rmtree, _WEIGHTS.parent, True)

# Streaming runs the same per-chunk computation as batch: equal bit for bit (atol 0).
TestArtalk = conformance_suite("audio", "artalk", {"weights": str(_WEIGHTS), "style": "natural_0", "device": "cpu"},
                               atol=0.0)
