"""Compare embedding networks at clip level on 4Q, before any head is built on them.

The protocol of ``../shared/notes/embeddings.md``: each 4Q clip's 16-kHz audio (as
``tools/corpus.py`` stored it) through the runtime's log-mel front end, 3-s patches back to
back, the clip vector = mean and std of the embedding over its patches; a standardised
logistic regression over the four quadrants, C chosen inside the training folds; artist-
disjoint 5-fold CV over all 707 clips (seeded). ``teacher`` scores the MSD teacher's own
penultimate layer (``CACHE/teacher``, ``tools/convert_musicnn.py``): the ceiling of a student
distilled from it. ``--raw`` drops the runtime's level normalisation (musicnn's own input),
``--hop`` sets the frames between patches (musicnn's extractor: 92).

    python tools/probe_embedding.py --seeds 3 --final-check teacher models/embedding.onnx
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from realtime.embedding import EmbeddingNetwork, LogMelFrontEnd, patch_stack, round_to_float16  # noqa: E402
from tools.corpus import PATCH, Teachers, items  # noqa: E402
from tools.datasets import DEFAULT_CACHE, DEFAULT_DATA, group_folds, holdout_group, load_4q_labels  # noqa: E402


class RawLogMel(LogMelFrontEnd):
    """The runtime's log-mel front end without its level normalisation (musicnn's own input)."""

    def _frames(self, first, stop, frames, pspec):
        mel = (pspec @ self._mel_fb_t).astype(np.float32)
        return np.log10(10000.0 * round_to_float16(mel) + 1.0), np.zeros(len(mel))


def clip_vectors(which: str, names: list[str], cache: Path, *, hop: int = PATCH, raw: bool = False,
                 norm_db: float | None = None) -> np.ndarray:
    """(n_clips, 2 * n_embedding): mean and std of the embedding over each clip's patches
    (one every ``hop`` frames; ``raw``: without the level normalisation; ``norm_db``: the
    normalisation's target level instead of the runtime's)."""
    if which == "teacher":
        msd = Teachers(cache / "teacher").msd

        def embed(x):
            return np.concatenate([msd.run(["penultimate:0"], {"melspec:0": x[i:i + 32]})[0]
                                   for i in range(0, len(x), 32)])
    else:
        net = EmbeddingNetwork(Path(which))

        def embed(x):
            return net.run(x)[0]
    front = RawLogMel() if raw else LogMelFrontEnd(**({} if norm_db is None else {"norm_db": norm_db}))
    rows = []
    for n in names:
        y = np.load(cache / "distill" / "audio" / f"{n}.npy").astype(np.float32) / 32767.0
        front.reset()  # each clip from its own start
        logmel, _ = front.process(y)
        ends = np.arange(PATCH, logmel.shape[0] + 1, hop)
        e = embed(np.ascontiguousarray(patch_stack(logmel, ends, PATCH), np.float32))
        rows.append(np.hstack([e.mean(axis=0), e.std(axis=0)]))
    return np.vstack(rows)


def _grid():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
                        {"logisticregression__C": [0.001, 0.003, 0.01, 0.03, 0.1]},
                        cv=GroupKFold(4), scoring="f1_macro")


def _signs(pred: np.ndarray, quadrant: np.ndarray) -> dict:
    return {"v_sign": float(np.mean(np.isin(pred, [1, 4]) == np.isin(quadrant, [1, 4]))),
            "a_sign": float(np.mean(np.isin(pred, [1, 2]) == np.isin(quadrant, [1, 2])))}


def cv_score(X: np.ndarray, quadrant: np.ndarray, artists: list[str], *, seed: int = 0) -> dict:
    """Artist-disjoint 5-fold CV (C chosen inside the training folds): macro-F1 mean and std
    over folds, valence- and arousal-sign accuracy over all clips."""
    from sklearn.metrics import f1_score

    fold = group_folds(artists, 5, seed=seed)
    k = np.array([fold[a] for a in artists])
    pred = np.zeros_like(quadrant)
    f1s = []
    for f in range(5):
        tr, te = k != f, k == f
        pred[te] = _grid().fit(X[tr], quadrant[tr], groups=np.asarray(artists)[tr]).predict(X[te])
        f1s.append(f1_score(quadrant[te], pred[te], average="macro"))
    return {"f1": float(np.mean(f1s)), "f1_std": float(np.std(f1s)), **_signs(pred, quadrant)}


def final_check_score(X: np.ndarray, quadrant: np.ndarray, artists: list[str]) -> dict:
    """Fitted on the development artists, scored on the final-check artists
    (:func:`tools.datasets.holdout_group`), as the mood head's final check."""
    from sklearn.metrics import f1_score

    held = np.array([holdout_group(a, "4q") for a in artists])
    pred = _grid().fit(X[~held], quadrant[~held], groups=np.asarray(artists)[~held]).predict(X[held])
    return {"f1": float(f1_score(quadrant[held], pred, average="macro")), "n": int(held.sum()),
            **_signs(pred, quadrant[held])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="+", help="'teacher' or an embedding network (.onnx)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="fold seeds scored (seed, seed + 1, ...)")
    ap.add_argument("--hop", type=int, default=PATCH, help="frames between patches")
    ap.add_argument("--raw", action="store_true", help="without the runtime's level normalisation")
    ap.add_argument("--final-check", action="store_true",
                    help="also fit on the development artists and score the final-check artists")
    ap.add_argument("--norm-db", type=float, default=None,
                    help="the level normalisation's target (dB mean square; default: the runtime's)")
    args = ap.parse_args(argv)
    df = load_4q_labels(args.data).set_index("song")
    its = [it for it in items(args.data, args.cache) if it.source == "4q"
           and (args.cache / "distill" / "teacher" / f"{it.name}.npz").is_file()]
    quadrant = np.array([int(df.loc[it.key, "quadrant"][1]) for it in its])
    artists = [it.group for it in its]
    level = LogMelFrontEnd().norm_db if args.norm_db is None else args.norm_db
    front = ("raw" if args.raw else f"normalised to {level:g} dB") + f" log-mel, hop {args.hop}"
    for which in args.networks:
        X = clip_vectors(which, [it.name for it in its], args.cache, hop=args.hop, raw=args.raw,
                         norm_db=args.norm_db)
        for seed in range(args.seed, args.seed + args.seeds):
            s = cv_score(X, quadrant, artists, seed=seed)
            print(f"{which} ({front}, fold seed {seed}): {len(its)} clips, macro-F1 {s['f1']:.3f} ± {s['f1_std']:.3f}, "
                  f"valence sign {s['v_sign']:.3f}, arousal sign {s['a_sign']:.3f}", flush=True)
        if args.final_check:
            s = final_check_score(X, quadrant, artists)
            print(f"{which} ({front}, final check, {s['n']} clips): macro-F1 {s['f1']:.3f}, "
                  f"valence sign {s['v_sign']:.3f}, arousal sign {s['a_sign']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
