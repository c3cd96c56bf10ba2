#!/usr/bin/env bash
# What training the shipped model needs (training/README.md), from Debian/Ubuntu packages:
#   python3-torch         – PyTorch (CPU)
#   libopenblas0-pthread  – a threaded BLAS: torch then trains ≈ 14× faster than on the reference BLAS
#   python3-sentencepiece – the tokenizer trainer
#   python3-numpy         – tensors to bytes for the exported weights
set -euo pipefail
PKGS=(python3-torch libopenblas0-pthread python3-sentencepiece python3-numpy)
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-training: no apt-get here; install these yourself: ${PKGS[*]}" >&2
  exit 0
fi
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup-training: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
