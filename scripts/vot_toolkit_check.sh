#!/usr/bin/env bash
# Cross-check SiamKPN against the official VOT toolkit on a local synthetic VOT2018-style workspace (docs/VOT.md).
#
#   scripts/vot_toolkit_check.sh [WORKDIR]
#
# 1. a cached toolkit venv (vot-toolkit 0.7.3 + attributee 0.1.9; never the project's .venv: the toolkit pins
#    opencv-python); exit 3 when it cannot be installed;
# 2. synthetic VOT2018-style sequences (siamkpn-synthetic --parts vot) and an untrained snapshot of the quick-start
#    config (SNAPSHOT=path uses a trained one instead);
# 3. `vot evaluate` + `vot analysis` of the VOT2018 baseline (reset protocol) and of VOT-LT2018's longterm
#    (unsupervised) experiment through python -m siamkpn.cli.vot_trax;
# 4. tools/test.py + tools/eval.py on the same sequences and snapshot;
# 5. scripts/vot_crosscheck.py compare: trajectories and scores side by side (WORKDIR/crosscheck.json); exit 1 when
#    the reset-protocol trajectories differ.
# Environment: PYTHON (project interpreter, default .venv/bin/python), VOT_PYTHON (base interpreter of the toolkit
# venv, default python3), VOT_TOOLKIT_VENV (default ~/.cache/siamkpn/vot-toolkit-0.7.3), SNAPSHOT, SEQUENCES,
# FRAMES (default 3 x 60).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
TOOLKIT_PINS=("vot-toolkit==0.7.3" "attributee==0.1.9")
VENV=${VOT_TOOLKIT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/siamkpn/vot-toolkit-0.7.3}
WORK=${1:-$(mktemp -d -t siamkpn-vot-check.XXXXXX)}
CONFIG=$REPO/experiments/siamkpn_quickstart/config.yaml
SEQUENCES=${SEQUENCES:-3}
FRAMES=${FRAMES:-60}
TRACKER=SiamKPN
START=$(date +%s)

stage() { echo "[vot-check +$(( $(date +%s) - START ))s] $*"; }

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
stage "work folder $WORK"

# 1. the toolkit's own venv, cached between runs
if ! "$VENV/bin/python" -c "import vot" >/dev/null 2>&1; then
  stage "creating the toolkit venv $VENV (${TOOLKIT_PINS[*]})"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  if ! { "${VOT_PYTHON:-python3}" -m venv "$VENV" && "$VENV/bin/pip" install -q "${TOOLKIT_PINS[@]}" \
         && "$VENV/bin/python" -c "import vot"; } > "$WORK/toolkit-install.log" 2>&1; then
    tail -5 "$WORK/toolkit-install.log"
    echo "vot_toolkit_check: blocked: the VOT toolkit could not be installed (log: $WORK/toolkit-install.log)"
    rm -rf "$VENV"
    exit 3
  fi
fi
VOT=$VENV/bin/vot
stage "toolkit $("$VENV/bin/python" -c 'import vot; print(vot.__version__)')"

# 2. data and snapshot
DATA=$WORK/data
if [ ! -f "$DATA/test/VOT2018/list.txt" ]; then
  "$PY" "$REPO/scripts/make_synthetic.py" --out "$DATA" --parts vot --seed 1 --test-videos "$SEQUENCES" \
    --test-frames "$FRAMES" --width 192 --height 144 > "$WORK/synthetic.log" 2>&1
fi
SNAP=${SNAPSHOT:-$WORK/untrained.pth}
if [ -z "${SNAPSHOT:-}" ] && [ ! -f "$SNAP" ]; then
  "$PY" "$REPO/scripts/vot_crosscheck.py" untrained --config "$CONFIG" --out "$SNAP"
fi
stage "sequences ready; snapshot $SNAP"

# 3. the official toolkit, through the TraX server
"$PY" "$REPO/scripts/vot_crosscheck.py" workspace --vot-root "$DATA/test/VOT2018" --ws "$WORK/ws" \
  --longterm "$WORK/ws_lt" --lt-root-out "$DATA/test/VOT2018-LT" --config "$CONFIG" --snapshot "$SNAP" \
  --tracker "$TRACKER" > /dev/null
export VOT_RESULTS_BINARY=0  # text trajectories, readable by scripts/vot_crosscheck.py
for ws in ws ws_lt; do
  "$VOT" evaluate --workspace "$WORK/$ws" "$TRACKER" > "$WORK/$ws-evaluate.log" 2>&1
  grep -q "concluded successfuly\|concluded successfully" "$WORK/$ws-evaluate.log" \
    || { tail -20 "$WORK/$ws-evaluate.log"; echo "vot_toolkit_check: vot evaluate failed ($ws)"; exit 1; }
  stage "vot evaluate $ws done"
  rm -f "$WORK/$ws/analysis/check.json"
  "$VOT" analysis --workspace "$WORK/$ws" --format json --name check "$TRACKER" > "$WORK/$ws-analysis.log" 2>&1
  [ -f "$WORK/$ws/analysis/check.json" ] \
    || { tail -20 "$WORK/$ws-analysis.log"; echo "vot_toolkit_check: vot analysis failed ($ws)"; exit 1; }
done
stage "vot analysis done"

# 4. this project on the same sequences and snapshot (one thread, as the TraX server runs: same arithmetic)
for ds in VOT2018 VOT2018-LT; do
  OMP_NUM_THREADS=1 "$PY" "$REPO/tools/test.py" --config "$CONFIG" --snapshot "$SNAP" --dataset "$ds" \
    --dataset-root "$DATA/test/$ds" --results-dir "$WORK/results" --tracker-name "$TRACKER" --device cpu \
    > "$WORK/test-$ds.log" 2>&1 || { tail -5 "$WORK/test-$ds.log"; exit 1; }
  "$PY" "$REPO/tools/eval.py" --tracker_path "$WORK/results" --dataset "$ds" --dataset-root "$DATA/test/$ds" \
    --json "$WORK/eval-$ds.json" --no-progress > "$WORK/eval-$ds.log" 2>&1 || { cat "$WORK/eval-$ds.log"; exit 1; }
done
stage "tools/test.py and tools/eval.py done"

# 5. side by side
"$PY" "$REPO/scripts/vot_crosscheck.py" compare --ws "$WORK/ws" --results "$WORK/results" --tracker "$TRACKER" \
  --vot-root "$DATA/test/VOT2018" --analysis "$WORK/ws/analysis/check.json" --eval-json "$WORK/eval-VOT2018.json" \
  --lt-ws "$WORK/ws_lt" --lt-root "$DATA/test/VOT2018-LT" --lt-analysis "$WORK/ws_lt/analysis/check.json" \
  --lt-eval-json "$WORK/eval-VOT2018-LT.json" --report "$WORK/crosscheck.json"
stage "done: $WORK/crosscheck.json"
