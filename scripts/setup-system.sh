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
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: no apt-get here; install these yourself: ${PKGS[*]}" >&2
  exit 0
fi
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup-system: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
