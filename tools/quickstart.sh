#!/usr/bin/env bash
# moodtrack quick start on a fresh Debian machine with Python 3.11.
#   bash tools/quickstart.sh            # set up, then track mood live (the bundled demo when there is no input device)
#   bash tools/quickstart.sh test       # set up, then run the test suite
#   bash tools/quickstart.sh demo ...   # any moodtrack subcommand and options
# Set-up is idempotent: Debian packages (PortAudio, libsndfile, venv), a virtual
# environment in .venv, and the package with its test extras. Re-runs skip what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv python3-dev libportaudio2 libsndfile1 pulseaudio pulseaudio-utils libasound2-plugins alsa-utils liblo-tools)

need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_apt+=("$pkg")
done
# Python may come from elsewhere than Debian (pyenv): venv then needs no python3-venv.
if python3 -c "import venv, ensurepip" 2>/dev/null; then
  need_apt=("${need_apt[@]/python3-venv}"); need_apt=("${need_apt[@]/python3-dev}")
fi
need_apt=($(printf '%s\n' "${need_apt[@]}" | grep -v '^$' || true))
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "quickstart: installing Debian packages: ${need_apt[*]}" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >&2
fi

if [ ! -x .venv/bin/python ]; then
  echo "quickstart: creating .venv" >&2
  python3 -m venv .venv
fi
stamp=".venv/.moodtrack-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "quickstart: installing moodtrack and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".[test]" >&2
  echo "$want" > "$stamp"
fi

case "${1:-}" in
  test)
    shift
    # Optional: the Node.js subscriber's test runs when its zeromq package is installed.
    if command -v npm >/dev/null 2>&1 && [ ! -d tools/node-subscriber/node_modules/zeromq ]; then
      echo "quickstart: installing the Node.js subscriber's packages (tools/node-subscriber)" >&2
      (cd tools/node-subscriber && npm install --no-audit --no-fund --silent >&2) \
        || echo "quickstart: npm install failed; the Node.js subscriber test will be skipped" >&2
    fi
    exec .venv/bin/python -m pytest -q "$@" ;;
  "")
    exec .venv/bin/moodtrack ;;
  *)
    exec .venv/bin/moodtrack "$@" ;;
esac
