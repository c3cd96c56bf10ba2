#!/usr/bin/env bash
# What training the shipped model needs (training/README.md), from Debian/Ubuntu packages:
#   python3-torch         – PyTorch (CPU)
#   libopenblas0-pthread  – a threaded BLAS: torch then trains ≈ 14× faster than on the reference BLAS
#   python3-sentencepiece – the tokenizer trainer
#   python3-numpy         – tensors to bytes for the exported weights
set -euo pipefail
PKGS=(python3-torch libopenblas0-pthread python3-sentencepiece python3-numpy)
APT_INSTALL_NAME=setup-training exec "$(dirname "$0")/apt-install.sh" "${PKGS[@]}"
