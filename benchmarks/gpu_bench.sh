#!/usr/bin/env bash
# The GPU tables of docs/benchmarks.md: `being bench` on CUDA, no network needed.
#
#   bash benchmarks/gpu_bench.sh OUT_DIR
#
# Writes OUT_DIR/{pipeline,chunk50,artalk,stream}/bench.{json,md} + PNGs (about 6-8 minutes on
# one H100). Needs the kernel and plugins installed (being on PATH, or BEING="python -m being_kernel.cli").
# Without pocketsphinx the viseme cells say so and the fake audio model's cells still give the
# render, composite and end-to-end figures. Environment:
#   SIZES=256,512,1024   image sizes        REPEATS=5        timed runs per figure
#   CLIP=path            a speech clip or a folder of clips (default: what being bench finds itself:
#                        $BEING_BENCH_CLIPS, else the kernel's demo speech)
#   STREAM_SECONDS=60    real-time streaming length (600 for the 10-minute drift check)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/gpu_bench.sh OUT_DIR}
SIZES=${SIZES:-256,512,1024}
REPEATS=${REPEATS:-5}
STREAM_SECONDS=${STREAM_SECONDS:-60}
read -r -a BEING <<< "${BEING:-being}"
CLIP_ARGS=()
[ -n "${CLIP:-}" ] && CLIP_ARGS=(--clips "$CLIP")
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1 || true
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'CUDA is not available')"
has() { python -c "import $1" 2>/dev/null; }

# 1. The default pipeline as `being run` runs it (8-frame packets), with the fake audio model as
#    a control that needs no pocketsphinx.
"${BEING[@]}" bench --audio viseme,fake --avatar splatting --torso static --size "$SIZES" --device cuda \
  "${CLIP_ARGS[@]}" --repeats "$REPEATS" --out "$OUT/pipeline"

# 2. The same at 512x512 with 50-frame packets: what the renderer's 50-frame batches give end to end.
"${BEING[@]}" bench --audio viseme,fake --avatar splatting --torso static --size 512 --device cuda \
  "${CLIP_ARGS[@]}" --repeats "$REPEATS" --chunk-frames 50 --out "$OUT/chunk50"

# 3. ARTalk, when installed: its real weights ($BEING_ARTALK_DIR) or random ones of the published size
#    (same compute; the motion is meaningless, so only speed counts).
if has being_audio_artalk.plugin; then
  WEIGHTS=${BEING_ARTALK_DIR:-}
  if [ -z "$WEIGHTS" ]; then
    WEIGHTS="$OUT/artalk-random-weights"
    python -c "import sys; from pathlib import Path
from being_audio_artalk.config import PUBLISHED
from being_audio_artalk.testing import write_random_weights
write_random_weights(Path(sys.argv[1]), PUBLISHED)" "$WEIGHTS"
  fi
  "${BEING[@]}" bench --audio artalk --avatar splatting --torso static --size "$SIZES" --device cuda \
    "${CLIP_ARGS[@]}" --repeats "$REPEATS" --set audio.weights="$WEIGHTS" --out "$OUT/artalk"
else
  echo "gpu_bench: being_audio_artalk is not installed: no ARTalk table" | tee "$OUT/artalk-skipped.txt"
fi

# 4. Streaming paced in real time at 512x512: first-frame latency and drift. The viseme model with
#    a 0.1 s lookahead (its shortest) when pocketsphinx is there, else the fake audio model.
if has being_audio_viseme.model; then STREAM_AUDIO=(--audio viseme --set audio.lookahead_s=0.1); else STREAM_AUDIO=(--audio fake); fi
"${BEING[@]}" bench "${STREAM_AUDIO[@]}" --avatar splatting --torso static --size 512 --device cuda \
  "${CLIP_ARGS[@]}" --repeats 3 --realtime --stream-seconds "$STREAM_SECONDS" --out "$OUT/stream"

echo "gpu_bench: tables in $OUT/*/bench.md"
