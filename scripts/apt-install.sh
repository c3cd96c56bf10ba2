#!/usr/bin/env bash
# Installs the named Debian/Ubuntu packages that are missing (no recommends: each setup script names
# every package a program needs), with sudo when not root. Used by setup-system.sh and setup-training.sh.
set -euo pipefail
NAME=${APT_INSTALL_NAME:-apt-install}
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$NAME: no apt-get here; install these yourself: $*" >&2
  exit 0
fi
missing=()
for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "$NAME: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
