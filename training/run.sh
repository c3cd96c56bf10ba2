#!/usr/bin/env bash
# The whole training run, from nothing to the shipped model folder:
#   training/run.sh [WORK_DIR] [OUT_DIR]
# Data and tokenizer in a few minutes, then PyTorch for the rest (checkpoints in WORK_DIR/train;
# rerunning resumes). Fixed seeds throughout. Log: WORK_DIR/train.log.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-.cache/training}
OUT=${2:-assets/asyncvoice-arith}
SAMPLES=${SAMPLES:-90000}
STEPS=${STEPS:-2000}
# Stage 2, from stage 1's weights: the control question (its answer weighted) and products.
SAMPLES2=${SAMPLES2:-24000}
STEPS2=${STEPS2:-600}
mkdir -p "$WORK"
scripts/setup-training.sh
PY=/usr/bin/python3 # Debian's torch is for the system interpreter, not one first on PATH
if [ ! -f "$WORK/tokenizer/tokenizer.json" ]; then
  node --import tsx training/generate.ts corpus "$WORK/corpus.txt" --samples 20000 --seed 1
  $PY training/train_tokenizer.py "$WORK/corpus.txt" "$WORK/tokenizer" --vocab 1024
fi
if [ ! -f "$WORK/data.bin.json" ]; then
  node --import tsx training/generate.ts tokens "$WORK/tokenizer" "$WORK/data.bin" --samples "$SAMPLES" --seed 1
fi
$PY training/train.py --data "$WORK/data.bin" --tokenizer "$WORK/tokenizer" --out "$OUT" --work "$WORK/train" --steps "$STEPS" --seed 1 --resume
if [ ! -f "$WORK/practice.bin.json" ]; then
  node --import tsx training/generate.ts tokens "$WORK/tokenizer" "$WORK/practice.bin" --samples "$SAMPLES2" --seed 2 --mix practice
fi
$PY training/train.py --data "$WORK/practice.bin" --tokenizer "$WORK/tokenizer" --out "$OUT" --work "$WORK/train2" --init "$WORK/train/checkpoint.pt" \
  --steps "$STEPS2" --lr 5e-4 --warmup 30 --probe-weight 8 --seed 2 --resume
# What the recogniser should expect people to say to it (pocketsphinx's language model).
node --import tsx training/speech-lm.ts "$OUT/speech.arpa" --sentences 40000 --seed 3
