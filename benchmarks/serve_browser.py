"""``being serve`` seen from a browser: headless Chromium opens the page with a fake microphone that
plays speech, and the page's report gives the figures (being_kernel.testing.live_browser):

* first frame: Start pressed -> first frame shown (signalling, ICE, DTLS, first frame);
* sound delay: microphone in -> the same speech out of the session (the speech the avatar speaks),
  by cross-correlating the two loudness envelopes the page records;
* A/V offset (fake triple only, whose mouth follows its frame's own loudness: the oracle): sound
  shown later (+) or earlier (-) than the mouth that goes with it;
* frames shown per second.

    python benchmarks/serve_browser.py [--fake] [--size 256] [--seconds 12] [--repeat 3] [-- serve args]

The server runs as ``being serve`` in a subprocess; Chromium from scripts/install_browser.sh."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from being_kernel.media import demo_speech, resample
from being_kernel.testing.live_browser import figures, find_chromium, run_page


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fake", action="store_true", help="the fake triple (gives the A/V offset)")
    p.add_argument("--size", default="256")
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--port", type=int, default=8098)
    p.add_argument("serve_args", nargs="*")
    a = p.parse_args()
    chromium = find_chromium()
    if chromium is None:
        sys.exit("no chromium: bash scripts/install_browser.sh")
    tmp = Path(tempfile.mkdtemp(prefix="being-serve-browser-"))
    speech = demo_speech()
    voice = resample(speech.samples, speech.sample_rate, 48_000)
    gap = np.zeros(48_000, np.float32)
    sf.write(tmp / "mic.wav", np.concatenate([gap, gap, voice, gap, voice, gap, voice, gap]), 48_000, subtype="PCM_16")
    plugins = ["--audio", "fake", "--avatar", "fake", "--torso", "fake"] if a.fake else []
    cmd = [sys.executable, "-m", "being_kernel.cli", "serve", "--port", str(a.port), "--size", a.size, "-q",
           *plugins, *a.serve_args]
    server = subprocess.Popen(cmd)
    url = f"http://127.0.0.1:{a.port}/?autostart=1&source=microphone&measure=1"
    rows = []
    try:
        time.sleep(2)
        for k in range(a.repeat):
            for _ in range(240):
                try:
                    report = asyncio.run(run_page(chromium, url, str(tmp / "mic.wav"), a.seconds, str(tmp / f"p{k}")))
                    break
                except (OSError, RuntimeError) as exc:  # the server is still loading
                    if "failed" in str(exc) and "fetch" not in str(exc).lower():
                        raise
                    time.sleep(1)
            fig = figures(report, fake_triple=a.fake)
            rows.append(dataclasses.asdict(fig) | {"server_stats": report["stats"][-1] if report["stats"] else None})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    print("command:", " ".join(cmd))


if __name__ == "__main__":
    main()
