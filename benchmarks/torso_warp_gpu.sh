#!/usr/bin/env bash
# The warped torso's figures in docs/benchmarks.md, end to end on one machine:
#
#   bash benchmarks/torso_warp_gpu.sh OUT_DIR
#
# 1. the full-frame synthetic set (512², 660 frames, the last 60 held out in poses outside the
#    training range); 2. `being fit --torso warp` on it for MINUTES; 3. quality of static / warp
#    fast / warp full on the held-out frames and the compositor's batched speed
#    (benchmarks/torso_warp.py, with the side-by-side image); 4. `being bench` of the whole pipeline
#    (viseme -> splatting -> static / warp fast / warp full) in 50-frame packets and in being run's
#    8; 5. `being run` into OUT_DIR/talk.mp4. Environment: SIZE=512, MINUTES=4, DEVICE=cuda,
#    WORK=a scratch folder (default OUT_DIR/work), REPEATS=3, STEPS=6000, CHUNKS="50 8",
#    WITH_STATIC=1 (0: no static cells).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/torso_warp_gpu.sh OUT_DIR}
SIZE=${SIZE:-512}
MINUTES=${MINUTES:-4}
DEVICE=${DEVICE:-cuda}
REPEATS=${REPEATS:-3}
STEPS=${STEPS:-6000}
WORK=${WORK:-$OUT/work}
mkdir -p "$OUT" "$WORK"
read -r -a BEING <<< "${BEING:-being}"
DATA=$WORK/full-frame-$SIZE
TORSO=$WORK/torso-$SIZE
[ -d "$DATA" ] || "${BEING[@]}" make-dataset synthetic --full-frame --out "$DATA" --size "$SIZE" --device "$DEVICE" -q
[ -d "$TORSO" ] || "${BEING[@]}" fit --torso warp --data "$DATA" --out "$TORSO" --device "$DEVICE" \
  --set fit.max_minutes="$MINUTES" --set fit.steps="$STEPS" -q
cp "$TORSO.fit/summary.json" "$OUT/fit-summary.json"
python benchmarks/torso_warp.py --data "$DATA" --torso "$TORSO" --device "$DEVICE" --image "$OUT/torso-warp.png" \
  | tee "$OUT/quality.txt"
for chunk in ${CHUNKS:-50 8}; do
  [ "${WITH_STATIC:-1}" = 1 ] && "${BEING[@]}" bench --audio viseme --avatar splatting --torso static --size "$SIZE" \
    --device "$DEVICE" --chunk-frames "$chunk" --repeats "$REPEATS" --stream-seconds 5 -q --out "$OUT/bench-static-$chunk"
  for mode in fast full; do
    "${BEING[@]}" bench --audio viseme --avatar splatting --torso warp --set torso.path="$TORSO" \
      --set torso.mode="$mode" --size "$SIZE" --device "$DEVICE" --chunk-frames "$chunk" --repeats "$REPEATS" \
      --stream-seconds 5 -q --out "$OUT/bench-$mode-$chunk"
  done
done
"${BEING[@]}" run --avatar splatting --torso warp --set torso.path="$TORSO" --device "$DEVICE" --out "$OUT/talk.mp4" -q
