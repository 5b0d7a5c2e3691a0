#!/usr/bin/env bash
# Set up everything Studio needs on a fresh machine: system libraries (when we can install
# them), a virtual environment in .venv, the project and its first-party plugins.
# Usage: scripts/setup.sh [--test]     (--test adds pytest, pytest-qt, ruff, mypy, import-linter and
#                                       Ray, the `cluster` extra, for the sweep tests)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Quick path: nothing changed since the last successful setup. The stamp records what that
# setup was for: pyproject.toml (dependencies, entry points), this script, the Python, the mode.
# Any change to those (or a missing .venv) runs the full setup below, which rewrites the stamp.
PYTHON=${PYTHON:-python3}
STAMP=.venv/.studio-setup
stamp_key() {
  local mode=$1
  { cat pyproject.toml scripts/setup.sh; .venv/bin/python -c 'import sys; print(sys.version)' 2>/dev/null; echo "$mode"; } \
    | sha256sum | cut -d' ' -f1
}
if [ -x .venv/bin/python ] && [ -x .venv/bin/studio ] && [ -f "$STAMP" ]; then
  if grep -qx "test $(stamp_key test)" "$STAMP" || { [ $want_test = 0 ] && grep -qx "base $(stamp_key base)" "$STAMP"; }; then
    exit 0  # up to date (a test setup includes the base one)
  fi
fi

# System libraries: Qt needs EGL/GL, fontconfig, xkbcommon and D-Bus, and its X11 (xcb)
# platform the libxcb-* helpers; sounddevice needs PortAudio. Without PortAudio the studio
# still runs (playback off).
need=()
for pkg in libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 libglib2.0-0 libportaudio2 \
           libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 \
           libxcb-render-util0 libxcb-image0 libxcb-xkb1; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing system packages: ${need[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || echo "setup: could not install ${need[*]}; continuing (missing PortAudio only disables playback)"
  else
    echo "setup: missing system packages (install them with your package manager): ${need[*]}"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

# torch first, pinned: on this project's machines that release lies on disk as a CPU build;
# elsewhere pip fetches the build for your platform. Override with TORCH_SPEC=... if you like.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" "${TORCH_SPEC:-torch==2.13.0}"
fi
if [ $want_test = 1 ]; then
  "${PIP[@]}" -e ".[test,quant,cluster]"
else
  "${PIP[@]}" -e .
fi
if [ $want_test = 1 ]; then
  echo "test $(stamp_key test)" > "$STAMP"
else
  echo "base $(stamp_key base)" > "$STAMP"
fi
echo "setup: ready (.venv)"
