#!/usr/bin/env bash
# Retrain every shipped model from ../shared/data, with fixed seeds (see models/MODEL.md):
#   bash tools/retrain.sh [DATA_DIR]        (default ../shared/data)
# Needs the train extra (pip install -e '.[train]', torch==2.13.0 for the student), Debian's
#   fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small ffmpeg espeak-ng festival
#   klettres-data asterisk-core-sounds-{en,es,fr,it,ru}-g722 (recorded voices, tools/voices.py)
# (installed here when missing) and, for the teachers, a TensorFlow 2.15 environment in $TFENV
# (see tools/convert_musicnn.py).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data}"
PY="${PYTHON:-.venv/bin/python}"
TFENV="${TFENV:-$HOME/tfenv}"
APT=(fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small ffmpeg espeak-ng festival
     alsa-utils klettres-data asterisk-core-sounds-{en,es,fr,it,ru}-g722)
missing=(); for p in "${APT[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"; fi
[ -f cache/teacher/msd_musicnn.onnx ] || "$TFENV/bin/python" tools/convert_musicnn.py --out cache/teacher
"$PY" tools/render_vgmidi.py --data "$DATA" --cache cache                        # MIDI -> audio, 3 soundfonts
"$PY" -m tools.arrangements --data "$DATA" --cache cache                         # VGMIDI arranged for GM instruments
"$PY" -m tools.corpus --data "$DATA" --cache cache                               # 16 kHz audio + teacher targets
"$PY" tools/train_embedding.py --cache cache --out models/embedding.onnx \
    --embed-mtt --widths 160,160,256,320 --minutes 35 --threads 2                  # distil the 400-value student
"$PY" tools/train_speech.py --data "$DATA" --cache cache --out models/embedding.onnx  # its speech layer, recorded voices
"$PY" -m tools.embdata --data "$DATA" --cache cache                              # every clip through it (cached)
"$PY" tools/train_tags.py --data "$DATA" --cache cache --out models/tags.onnx    # genre head + tag figures
"$PY" tools/train.py --data "$DATA" --cache cache --out models/mood.onnx         # mood head: CV, fit, export
"$PY" tools/evaluate.py --data "$DATA" --cache cache --final-check --invariance --out models/eval --name final
