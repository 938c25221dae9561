#!/usr/bin/env bash
# The seam restorer's figures in docs/benchmarks.md, end to end on one machine:
#
#   bash benchmarks/torso_restorer_gpu.sh OUT_DIR
#
# 1. the full-frame synthetic set (SIZE², 660 frames, the last 60 held out in poses outside the
#    training range); 2. `being fit --torso warp` on it for WARP_MINUTES (WARP_MINUTES=0: no warp
#    rows); 3. `being fit --torso restorer` over static, and over that warp torso, for MINUTES each;
#    4. quality of static / restorer / warp fast / restorer over warp on the held-out frames, the
#    neck crops PNG and the restorer's speed (benchmarks/torso_restorer.py); 5. `being run` with the
#    restorer into OUT_DIR/talk.mp4. Environment: SIZE=512, MINUTES=2, WARP_MINUTES=2, DEVICE=cuda,
#    WORK=a scratch folder (default OUT_DIR/work), FIT_SETS="--set fit.x=y ..." (extra restorer settings).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/torso_restorer_gpu.sh OUT_DIR}
SIZE=${SIZE:-512}
MINUTES=${MINUTES:-2}
WARP_MINUTES=${WARP_MINUTES:-2}
DEVICE=${DEVICE:-cuda}
WORK=${WORK:-$OUT/work}
read -r -a FIT_SETS <<< "${FIT_SETS:-}"
mkdir -p "$OUT" "$WORK"
read -r -a BEING <<< "${BEING:-being}"
DATA=$WORK/full-frame-$SIZE
[ -d "$DATA" ] || time "${BEING[@]}" make-dataset synthetic --full-frame --out "$DATA" --size "$SIZE" --device "$DEVICE" -q
fit_restorer() {  # OUT_NAME [--set ...]
  local out=$WORK/$1
  shift
  [ -d "$out" ] || "${BEING[@]}" fit --torso restorer --data "$DATA" --out "$out" --device "$DEVICE" \
    --set fit.max_minutes="$MINUTES" "${FIT_SETS[@]}" "$@" -q
  cp "$out.fit/summary.json" "$OUT/$(basename "$out")-summary.json"
}
fit_restorer restorer-static
WARP_ARGS=()
if [ "$WARP_MINUTES" != 0 ]; then
  TORSO=$WORK/warp
  [ -d "$TORSO" ] || "${BEING[@]}" fit --torso warp --data "$DATA" --out "$TORSO" --device "$DEVICE" \
    --set fit.max_minutes="$WARP_MINUTES" -q
  fit_restorer restorer-warp --set fit.base=warp --set fit.base_path="$TORSO"
  WARP_ARGS=(--warp "$TORSO" --restorer-warp "$WORK/restorer-warp")
fi
python benchmarks/torso_restorer.py --data "$DATA" --restorer "$WORK/restorer-static" "${WARP_ARGS[@]}" \
  --device "$DEVICE" --image "$OUT/torso-restorer.png" | tee "$OUT/quality.txt"
"${BEING[@]}" run --avatar splatting --torso restorer --set torso.path="$WORK/restorer-static" --device "$DEVICE" \
  --out "$OUT/talk.mp4" -q
