#!/usr/bin/env bash
# One-shot GPU session (about 9.5 minutes): verify the CUDA / AMP / compile / DDP (nccl) / export paths and
# train the default model (full PRNet) on synthetic faces rendered on the same machine.
#
#   bash scripts/gpu/gpu_default_model.sh            # from the repo root; results under $OUT (default /tmp/out)
#
# Timeline (seconds from start; SYNTH_S, TRAIN_S override):
#   0..SYNTH_S   `prnet data synth` on all but 3 CPU cores  ||  scripts/gpu/gpu_check_train.py (+ export check)
#   SYNTH_S..    `prnet train --preset full` (batch 32, lr 1e-3 halved every 1000 steps: the paper's schedule
#                shape compressed to a short run) on the rendered samples, for TRAIN_S seconds
#                from INIT's weights (default: the shipped 128 px model: progressive resizing to 256 px,
#                `prnet train --init`); INIT= starts from random weights
#   then         best checkpoint (by validation NME) -> FP16 inference checkpoint, split into <16 MB parts.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
SYNTH_S=${SYNTH_S:-190}; TRAIN_S=${TRAIN_S:-330}; N=${N:-60000}; INIT=${INIT-prnet/assets/default_model.pt}
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
CORES=$(nproc); SYNTH_WORKERS=$(( CORES > 4 ? CORES - 3 : 1 ))
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/checks.log"
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/checks.log"

timeout "$SYNTH_S" python3 -m prnet data synth --out /tmp/synth --n "$N" --workers "$SYNTH_WORKERS" --seed 1 \
  > "$OUT/run.log" 2>&1 &
SYNTH_PID=$!
( timeout $(( SYNTH_S - 40 )) python3 -m scripts.gpu.gpu_check_train --out /tmp/gpucheck --workers 2
  timeout 35 bash scripts/gpu/gpu_check_export.sh ) >> "$OUT/checks.log" 2>&1
wait "$SYNTH_PID"
echo "synth: $(ls /tmp/synth/samples/*.npz 2>/dev/null | wc -l) samples after ${SYNTH_S}s" | tee -a "$OUT/run.log"

timeout "$TRAIN_S" python3 -m prnet train --data /tmp/synth --preset full --out /tmp/run --batch-size 32 \
  --workers $(( CORES - 2 )) --no-progress --set lr_decay_every=1000 --set eval_every=400 --set save_every=400 \
  --set log_every=50 --set val_max_samples=400 --set max_steps=200000 ${INIT:+--init "$INIT"} ${EXTRA_TRAIN_ARGS:-} >> "$OUT/run.log" 2>&1
echo "train exit $?" | tee -a "$OUT/run.log"
cp /tmp/run/metrics.jsonl "$OUT/train_metrics.jsonl" 2>/dev/null
cp /tmp/run/config.json "$OUT/train_config.json" 2>/dev/null
BEST=/tmp/run/checkpoints/best.pt
[ -f "$BEST" ] || BEST=$(ls /tmp/run/checkpoints/step_*.pt 2>/dev/null | tail -n 1)
if [ -n "$BEST" ] && python3 -m scripts.assets.release_checkpoint "$BEST" /tmp/default_model.pt \
     --note "full PRNet, prnet train --preset full on prnet data synth (seed 1), one GPU session" >> "$OUT/run.log" 2>&1; then
  split -b 15M /tmp/default_model.pt "$OUT/default_model.pt.part-"
  sha256sum /tmp/default_model.pt | tee -a "$OUT/run.log"
else
  echo "no checkpoint to release" | tee -a "$OUT/run.log"
fi
ls -la "$OUT"
