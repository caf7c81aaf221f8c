"""The final check as a user gets it: ``moodtrack analyze`` on the hold-out files, scored.

``tools/evaluate.py --final-check`` scores the head on cached, unsmoothed outputs of the
streaming extractor. This tool instead runs the installed command itself, as the issue's
figures were measured: ``moodtrack analyze`` (its default configuration, or ``--config``,
at each ``--smoothing`` time constant) over the hold-out 4Q clips (their ``summary.csv``
clip means -> quadrant) and the hold-out VGMIDI pieces rendered through one soundfont
(their timelines -> per-measure means against the listeners' mean curve, and 30-s
excerpts). Same scores and code as the evaluation (:mod:`tools.moodcore`).

    The shipped ``models/mood.onnx`` is refit on every group, the hold-out included, so scoring
it here is in-sample; for a true final check give a head fitted without the hold-out:

    python tools/train.py --development-only --out cache/dev/mood.onnx
    python tools/score_analyze.py --model cache/dev/mood.onnx --smoothing 0,2 --json models/eval/analyze_check.json

(``--development-only`` puts the embedding and tag networks it was trained on beside it).

"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime.outputs import atomic_write  # noqa: E402
from tools.datasets import (DEFAULT_CACHE, DEFAULT_DATA, Clip, curve_targets, holdout_group,  # noqa: E402
                            load_4q_labels, load_vgmidi_annotations)
from tools.moodcore import score_4q, score_vgmidi  # noqa: E402


def hold_out_inputs(data: Path, cache: Path, soundfont: str):
    """``(q4, vg)``: hold-out 4Q ``(path, label row)`` and VGMIDI ``(path, piece id, info)``."""
    from tools.render_vgmidi import rendered_path

    q4 = [(Path(data) / "4q" / "audio" / f"{row.song}.ogg", row)
          for row in load_4q_labels(data).itertuples(index=False) if holdout_group(str(row.artist), "4q")]
    vg = []
    for pid, info in load_vgmidi_annotations(data).items():
        if holdout_group(pid, "vgmidi"):
            path = rendered_path(cache, soundfont, pid)
            if not path.is_file():
                raise SystemExit(f"score_analyze: {path} missing: run tools/render_vgmidi.py first")
            vg.append((path, pid, info))
    return q4, vg





def run_analyze(paths: list[Path], out: Path, *, smoothing: float, config: str | None, jobs: int,
                model: Path | None = None) -> None:
    cmd = [sys.executable, "-m", "realtime", "analyze", *map(str, paths), "-o", str(out),
           "--jobs", str(jobs), "--smoothing", f"{smoothing:g}"]
    if model is not None:
        cmd += ["--model", str(model)]
    if config:
        cmd += ["--config", config]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"score_analyze: moodtrack analyze failed ({proc.returncode}): {proc.stderr[-2000:]}")


def read_summary(out: Path) -> dict[str, dict]:
    """file name -> summary row of ``out/summary.csv``."""
    with open(out / "summary.csv", newline="") as f:
        return {Path(r["file"]).name: r for r in csv.DictReader(f)}


def read_timeline(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(t, [valence, arousal])`` of a timeline CSV."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    t = np.array([float(r["t"]) for r in rows])
    va = np.array([[float(r["valence"]), float(r["arousal"])] for r in rows]).reshape(-1, 2)
    return t, va


def score(q4, vg, out: Path) -> dict:
    summary = read_summary(out)
    clips, preds = [], []
    for path, row in q4:
        s = summary[path.name]
        if s["error"]:
            raise SystemExit(f"score_analyze: {path}: {s['error']}")
        clips.append(Clip("4q", str(row.artist), row.song, "orig", np.zeros(1), np.zeros((1, 0)), np.zeros((1, 2)),
                          {"quadrant": row.quadrant, "v_tag": row.v, "a_tag": row.a}))
        preds.append(np.array([[float(s["mean_valence"]), float(s["mean_arousal"])]]))
    res = score_4q(clips, preds)
    clips, preds = [], []
    for path, pid, info in vg:
        t, va = read_timeline(out / summary[path.name]["timeline"])
        d = info["duration_s"]
        y = np.c_[curve_targets(t, info["valence"], d), curve_targets(t, info["arousal"], d)]
        clips.append(Clip("vgmidi", pid, pid, "render", t, np.zeros((t.size, 0)), y,
                          {"duration_s": d, "measures": info["measures"],
                           "valence": info["valence"], "arousal": info["arousal"]}))
        preds.append(va)
    res.update(score_vgmidi(clips, preds))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--soundfont", default="fluidr3", help="VGMIDI rendering (tools/render_vgmidi.py)")
    ap.add_argument("--smoothing", default="2", help="comma-separated smoothing time constants, seconds")
    ap.add_argument("--config", default=None, help="moodtrack preset or TOML file (default: its default)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None,
                    help="mood head to score (default: the shipped one, which has seen the hold-out)")
    ap.add_argument("--json", type=Path, default=None, help="also write the scores here")
    args = ap.parse_args(argv)
    q4, vg = hold_out_inputs(args.data, args.cache, args.soundfont)
    print(f"hold-out: {len(q4)} 4Q clips, {len(vg)} VGMIDI pieces ({args.soundfont})", file=sys.stderr)
    results = {}
    for s in (float(x) for x in args.smoothing.split(",")):
        with tempfile.TemporaryDirectory(prefix="mt-score-") as tmp:
            run_analyze([p for p, _ in q4] + [p for p, _, _ in vg], Path(tmp) / "out", smoothing=s,
                        config=args.config, jobs=args.jobs, model=args.model)
            results[f"{s:g}"] = r = score(q4, vg, Path(tmp) / "out")
        print(f"smoothing {s:g} s: 4Q F1 {r['q4_macro_f1']:.3f}, valence sign {r['q4_valence_sign_acc']:.3f}, "
              f"arousal sign {r['q4_arousal_sign_acc']:.3f}; VGMIDI per-piece r {r['vg_v_piece_r']:.3f} / "
              f"{r['vg_a_piece_r']:.3f}, CCC {r['vg_v_piece_ccc']:.3f} / {r['vg_a_piece_ccc']:.3f}; "
              f"30-s excerpts F1 {r.get('vg_seg_macro_f1', float('nan')):.3f}")
    if args.json:
        atomic_write(args.json, json.dumps({"config": args.config or "default", "soundfont": args.soundfont,
                                         "model": str(args.model or "shipped (hold-out in its training set)"),
                                         "n_4q": len(q4), "n_vgmidi": len(vg), "by_smoothing_s": results},
                                        indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
