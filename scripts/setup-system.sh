#!/usr/bin/env bash
# System programs the speech side uses (and its tests need), from Debian/Ubuntu packages:
#   espeak-ng, festival   – text to speech
#   festvox-kallpc16k     – a voice for festival: festival only *recommends* one, and without a
#                           voice text2wave exits 0 with an empty file (silent speech)
#   pocketsphinx(+en-us)  – offline speech recognition
#   sox, alsa-utils       – audio conversion, playback (aplay) and recording (arecord)
#   chromium              – the browser the renderer tests drive (playwright-core)
# Recommended packages are left out on purpose (smaller, predictable installs); every one a
# program needs to work is named here instead. Check: remove these packages, run this script,
# then `npm test`. Other systems: see README ("Speech").
set -euo pipefail
PKGS=(espeak-ng festival festvox-kallpc16k pocketsphinx pocketsphinx-en-us sox libsox-fmt-all alsa-utils chromium)
# `setup-system.sh espeak-ng` installs just the named ones (the README's main job needs only a voice).
if [ $# -gt 0 ]; then
  for p in "$@"; do
    [[ " ${PKGS[*]} " == *" $p "* ]] || { echo "setup-system: $p is not one of: ${PKGS[*]}" >&2; exit 2; }
  done
  PKGS=("$@")
fi
APT_INSTALL_NAME=setup-system exec "$(dirname "$0")/apt-install.sh" "${PKGS[@]}"
