"""Side-by-side cross-validation of mood heads on the same group-disjoint folds.

    python tools/compare.py --data ../shared/data [--out models/eval/comparison.md] [--only emb]

Each row is one configuration (features, pools, head model, training variants) run through
``tools.evaluate.cross_validate`` (4Q by artist, VGMIDI by piece, the hold-out groups left
out). The table is written as markdown with the mean ± std over folds.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: small matrices, busy cores

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.evaluate import cross_validate, load_all  # noqa: E402
from tools.moodcore import DEFAULT_CONFIG  # noqa: E402

#: (label, config changes) in the order they are run.
ROWS = [
    ("hand-made mt-feat-4, HGB 500x31 (clean 4Q)", {"features": "hand", "model": "hgb_big", "q4_variants": "orig"}),
    ("hand-made mt-feat-4, ridge (clean 4Q)", {"features": "hand", "model": "ridge30", "q4_variants": "orig"}),
    ("embedding ctx_mean, ridge (clean 4Q)", {"pools": "ctx_mean", "q4_variants": "orig"}),
    ("embedding ctx_mean + short_rel, ridge (clean 4Q)", {"q4_variants": "orig"}),
    ("both: embedding + hand-made, ridge (clean 4Q)", {"features": "both", "q4_variants": "orig"}),
    ("embedding ctx_mean + short_rel, ridge (4Q + 2 signal chains)", {}),
    ("embedding ctx_mean + ctx_std + short_rel, ridge (4Q + 2 chains)", {"pools": "ctx_mean,ctx_std,short_rel"}),
    ("embedding ctx_mean + short_rel, ridge alpha 300 (4Q + 2 chains)", {"model": "ridge300"}),
    ("embedding ctx_mean + short_rel, MLP (4Q + 2 chains)", {"model": "mlp_small"}),
]
KEYS = [("q4_macro_f1", "4Q F1"), ("q4_valence_sign_acc", "V-sign"), ("q4_arousal_sign_acc", "A-sign"),
        ("vg_v_piece_r", "VG r V"), ("vg_a_piece_r", "VG r A"), ("vg_v_piece_ccc", "VG CCC V"),
        ("vg_a_piece_ccc", "VG CCC A")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / "cache")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "eval" / "comparison.md")
    ap.add_argument("--only", default="", help="run only the rows whose label contains this")
    args = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    lines = ["| configuration | " + " | ".join(k[1] for k in KEYS) + " |",
             "|---|" + "---|" * len(KEYS)]
    results = {}
    for label, change in ROWS:
        if args.only and args.only not in label:
            continue
        config = {**DEFAULT_CONFIG, **change}
        t0 = time.time()
        log(f"== {label}")
        clips = load_all(args.data, args.cache, config)
        rep = cross_validate(clips, config, log=log)
        s = rep["summary"]
        results[label] = {k: [s[k]["mean"], s[k]["std"]] for k, _ in KEYS if k in s}
        lines.append(f"| {label} | " + " | ".join(
            f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" if k in s else "–" for k, _ in KEYS) + " |")
        log(lines[-1] + f"  ({time.time() - t0:.0f} s)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
