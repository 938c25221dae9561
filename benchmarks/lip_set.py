"""Build a phone-timed lip-sync evaluation set with Festival: a tuning part and a held-out part.

Every clip is one of the sentences below (written for this set, rich in p, b and m at the start,
middle and end of words, between vowels and in clusters) spoken by a Festival voice at a given
speaking rate (``Duration_Stretch``). Per clip the folder gets

* ``NAME.wav``  16 kHz mono 16-bit (Festival's wave resampled to 16 kHz; a diphone voice's trailing
  silence past the last phone is cut, so the wave ends where the last ``pau`` ends),
* ``NAME.segs`` Festival's own phone timing (``utt.save.segs``: ``#``, then ``END 100 PHONE`` per
  phone, ``pau`` = silence), the ground truth of ``being_kernel.metrics.lipsync.read_segs``,
* ``NAME.txt``  the sentence.

The split is by voice AND by sentence, and fixed: sentence i goes to the tuning part when i is
even, to the held-out part when it is odd; the voices kal (diphone) and slt (HTS) are the tuning
voices (the plugin was first developed on them, ../shared/data), ked (diphone) is held out. Each
voice speaks each sentence of its part at the normal rate and 25 % faster (stretch 1.0 and 0.8).
Nothing in the held-out part (voice or sentence) is seen while tuning.

    python benchmarks/lip_set.py [OUT]     # default ~/.cache/being/lip-set; writes OUT/tune, OUT/heldout

Needs ``festival`` with the voices festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts
(Debian/Ubuntu packages). Audio is never committed to the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

RATE = 16000
DEFAULT_OUT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "being" / "lip-set"

#: short name -> Festival voice function
VOICES = {"kal": "voice_kal_diphone", "slt": "voice_cmu_us_slt_arctic_hts", "ked": "voice_ked_diphone"}
TUNE_VOICES = ("kal", "slt")
HELDOUT_VOICES = ("ked",)
#: Duration_Stretch values: 1.0 normal, 0.8 = 25 % faster (shorter bilabials, less time to open)
STRETCHES = (1.0, 0.8)

SENTENCES = (
    "Maybe the baby wants a bigger bottle of milk.",
    "Pam kept a map of the empty campsite in her backpack.",
    "Bring the blue umbrella, it might be pouring by morning.",
    "A bomb of pepper made the soup impossible to eat.",
    "My brother bumped his elbow on the rim of the tub.",
    "Please pass me both plums from the bamboo bowl.",
    "The happy puppy jumped up and grabbed the robe.",
    "Tim and Bob mopped the muddy floor of the cabin.",
    "Bees hum above the apple blossoms in May.",
    "Every member of the band played a simple rhythm.",
    "Emma bought a lamp, a rope and a pumpkin pie.",
    "The rabbit hopped by the pebbles near the pump.",
    "Put the bread and the jam on the top shelf, Ben.",
    "Amber hoped the problem would be simple to map.",
    "A robber broke the camera of the umpire at the ballpark.",
    "My mum made a lemon sponge cake for the picnic.",
    "Bubbles popped above the bathtub as Abby laughed.",
    "The plumber emptied a bucket of warm water.",
    "Cameras blink and beep while the crowd claps.",
    "Pablo prepared a big breakfast of pancakes.",
    "The submarine moved slowly beneath the bay.",
    "Maybe Mabel will bring the map back by Monday.",
    "Probably the problem is a broken cable.",
    "Jump into the pool before the lamps go dim.",
    "A bumblebee bumped into the open window pane.",
    "We compared the prices at the market by the harbor.",
    "Pick up the pieces and put them in the box, please.",
    "The ambulance stopped beside the tall building.",
    "Bill bought a blue bike with a bell and a basket.",
    "Some people prefer apples to plums in the summer.",
    "Mother combed the baby's hair before the party.",
    "The empire built temples of marble and amber.",
    "Spring comes to the hills with a burst of blossoms.",
    "Bob is humble, but his opinion is impressive.",
    "I promise the boat will be back by the time the moon rises.",
    "The tap dripped upon the plump pillow all evening.",
    "Remember to stamp the envelope before you mail it.",
    "Pebbles tumbled down the steep embankment.",
    "Baby birds peep from a nest above the barn.",
    "The campers climbed a bumpy path to the summit.",
    "Mix a bit of butter into the warm mashed potato.",
    "A puppet show made the small boy beam with pride.",
    "Pour some maple syrup upon the big blueberry pancake.",
    "Ambrose dropped his rubber stamp in the puddle.",
    "The bishop blessed the boats in the bay at dawn.",
    "Impatient mobs pushed past the barrier.",
    "My sleepy pup naps beneath the bamboo lamp.",
    "The beam above the doorway began to bend.",
    "Amy and Abe swam back to the pebble beach.",
    "Bake the bread at a moderate temperature.",
    "Barbara mumbled something about a broken pipe.",
    "Please improve the map before the members meet.",
    "Lumps of clay became a simple pot by the evening.",
    "Ten bumpy miles of mud separate the camp from the pub.",
    "The mime pretended to be trapped in a box.",
    "Maybe a bomb, maybe a bump, but the boom was big.",
    "Ripe berries dropped upon the moss by the brook.",
    "A shepherd brought a lamb up the steep slope.",
    "The umbrella of Bubba flapped open in the breeze.",
    "The mob was calm but the embassy stayed empty.",
    "Tom put the pepper mill on the upper cupboard.",
    "A bubble bath is my favorite problem solver.",
    "Some bright lamps blinked above the empty stadium.",
    "Grab the map, Mabel, the bus is about to leave.",
    "The typist happily improved every paragraph.",
    "Pebble by pebble, the boy built a tiny pyramid.",
    "Combine the bran, the plums and the maple flakes.",
    "Moby the cat jumped upon the impatient poodle.",
    "The lumberjack dropped a limb by the bramble.",
    "The robot of Abigail beeps when its battery is empty.",
    "A warm breeze swept past the damp marsh at noon.",
    "Bobby may probably bring a bamboo broom.",
    "The symphony ended with a blast of trumpets.",
    "Imagine a bumpy boat ride in the pouring rain.",
    "Pumpkin, apple and plum pies were baked by Pam.",
    "The robin perched upon the maple by the pump.",
    "My boss promised a bonus by the end of the month.",
    "Bumblebees ambled above the purple poppies.",
    "Please bring me a map and a compass by Tuesday.",
    "The baby ape grabbed a bamboo stem and climbed.",
)


def festival_ok() -> str | None:
    """None if festival and the three voices are there, else why not."""
    if shutil.which("festival") is None:
        return "festival is not installed (apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)"
    return None


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synthesize(voice: str, text: str, stretch: float, stem: Path) -> None:
    """Festival speaks ``text`` with ``voice`` (a VOICES key) at ``stretch``: writes stem.wav/.segs/.txt."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, segs = Path(tmp) / "x.wav", Path(tmp) / "x.segs"
        script = Path(tmp) / "x.scm"
        script.write_text(
            f"({VOICES[voice]})\n"
            f"(Parameter.set 'Duration_Stretch {stretch})\n"
            f"(set! utt (utt.synth (Utterance Text {_scheme_string(text)})))\n"
            f"(utt.wave.resample utt {RATE})\n"
            f"(utt.save.wave utt {_scheme_string(str(raw))} 'riff)\n"
            f"(utt.save.segs utt {_scheme_string(str(segs))})\n")
        subprocess.run(["festival", "-b", str(script)], check=True, capture_output=True, timeout=120)
        with wave.open(str(raw)) as w:
            assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, raw
            x = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        lines = segs.read_text().splitlines()
        last = float(lines[-1].split()[0])
        n = round(last * RATE)
        if len(x) > n:  # the trailing part of the final pause past its end
            x = x[:n]
        elif len(x) < n:  # never seen; pad with silence so the .segs cover the wave exactly
            x = np.concatenate([x, np.zeros(n - len(x), np.int16)])
        with wave.open(str(stem.with_suffix(".wav")), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(x.tobytes())
        stem.with_suffix(".segs").write_text("\n".join(lines) + "\n")
        stem.with_suffix(".txt").write_text(text + "\n")


def plan() -> dict[str, list[tuple[str, str, float, str]]]:
    """part -> [(name, voice, stretch, sentence)], deterministic."""
    out: dict[str, list[tuple[str, str, float, str]]] = {"tune": [], "heldout": []}
    for i, text in enumerate(SENTENCES):
        part, voices = ("tune", TUNE_VOICES) if i % 2 == 0 else ("heldout", HELDOUT_VOICES)
        for voice in voices:
            for stretch in STRETCHES:
                out[part].append((f"{voice}_s{i:03d}_r{round(stretch * 100):03d}", voice, stretch, text))
    return out


def build(out: Path, parts: tuple[str, ...] = ("tune", "heldout"), limit: int | None = None) -> dict[str, int]:
    """Synthesize the set into out/<part>/ (clips already there are kept). Returns clips per part."""
    why = festival_ok()
    if why:
        raise RuntimeError(why)
    counts = {}
    for part, clips in plan().items():
        if part not in parts:
            continue
        folder = out / part
        folder.mkdir(parents=True, exist_ok=True)
        clips = clips[:limit] if limit else clips
        for name, voice, stretch, text in clips:
            stem = folder / name
            if not all(stem.with_suffix(s).is_file() for s in (".wav", ".segs", ".txt")):
                synthesize(voice, text, stretch, stem)
        counts[part] = len(clips)
    (out / "README.txt").write_text(
        "Lip-sync evaluation set written by benchmarks/lip_set.py (Festival).\n"
        f"tune/: voices {', '.join(TUNE_VOICES)}, the even-numbered sentences; "
        f"heldout/: voices {', '.join(HELDOUT_VOICES)}, the odd-numbered sentences; "
        f"each at Duration_Stretch {', '.join(map(str, STRETCHES))}.\n")
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    try:
        counts = build(args.out)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.out}: " + ", ".join(f"{part} {n} clips" for part, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
