#!/usr/bin/env bash
# moodtrack quick start on a fresh Debian machine with Python 3.11.
#   bash tools/quickstart.sh            # set up, then track mood live (the bundled demo when there is no input device)
#   bash tools/quickstart.sh test       # set up, then run the test suite
#   bash tools/quickstart.sh demo ...   # any moodtrack subcommand and options
# Set-up is idempotent: Debian packages (PortAudio, libsndfile, venv), a virtual
# environment in .venv, and the package with its test extras at the versions pinned in
# constraints.txt (MOODTRACK_UNPINNED=1: the newest versions pip resolves instead).
# Re-runs skip what is done. One line per step; what the installers print goes to
# .venv/quickstart.log, whose tail is shown when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG=".venv/quickstart.log"
mkdir -p .venv
: > "$LOG"

# step "what it does" command...: one progress line; the command's output goes to the log.
step() {
  local what="$1"; shift
  local t0=$SECONDS
  printf 'quickstart: %s ... ' "$what" >&2
  echo "=== $what: $*" >> "$LOG"
  if "$@" >> "$LOG" 2>&1; then
    echo "done ($((SECONDS - t0)) s)" >&2
  else
    local rc=$?
    echo "FAILED (exit $rc)" >&2
    echo "--- last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2
    echo "--- the whole log: $LOG" >&2
    return "$rc"
  fi
}

APT_PACKAGES=(python3-venv python3-dev libportaudio2 libsndfile1 pulseaudio pulseaudio-utils libasound2-plugins alsa-utils liblo-tools
  chromium espeak-ng)  # chromium: the web view's browser tests (driven by playwright, from the test extra);
  # espeak-ng: a synthetic voice for the speech tests

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
  step "installing Debian packages (${need_apt[*]})" \
    sh -c "$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ${need_apt[*]}"
fi

if [ ! -x .venv/bin/python ]; then
  step "creating the virtual environment .venv" python3 -m venv .venv
fi

# Pinned (reproducible, what CI uses) unless MOODTRACK_UNPINNED=1 asks for the newest.
if [ -n "${MOODTRACK_UNPINNED:-}" ]; then
  pins=(--upgrade --upgrade-strategy eager); which="the newest versions"
else
  pins=(-c constraints.txt); which="the versions in constraints.txt"
fi
stamp=".venv/.moodtrack-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)${MOODTRACK_UNPINNED:+-unpinned}"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "updating pip" .venv/bin/python -m pip install --upgrade pip
  step "installing moodtrack and its dependencies into .venv ($which)" \
    .venv/bin/python -m pip install "${pins[@]}" -e ".[test]"
  echo "$want" > "$stamp"
fi

case "${1:-}" in
  test)
    shift
    # Optional: the Node.js subscriber's test runs when its zeromq package is installed.
    if command -v npm >/dev/null 2>&1 && [ ! -d tools/node-subscriber/node_modules/zeromq ]; then
      step "installing the Node.js subscriber's packages (tools/node-subscriber)" \
        sh -c "cd tools/node-subscriber && npm install --no-audit --no-fund" \
        || echo "quickstart: the Node.js subscriber test will be skipped" >&2
    fi
    exec .venv/bin/python -m pytest -q "$@" ;;
  "")
    exec .venv/bin/moodtrack ;;
  *)
    exec .venv/bin/moodtrack "$@" ;;
esac
