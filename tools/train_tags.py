"""Train the genre head (``models/tags.onnx``) on the 4Q clips' AllMusic genres, and
measure the tags: genres artist-disjointly on 4Q, instruments (piano) on rendered VGMIDI.

    python tools/train_tags.py --data ../shared/data [--out models/tags.onnx]

The head is one logistic regression per genre on the update's context embedding and tag
probabilities (what :class:`realtime.embedding.EmbeddingExtractor` gives every update),
trained on clip means of the clean and augmented clips. Scores (5-fold, by artist):

- ``top3_hit``: share of clips with one of their AllMusic genres among the top-3 genres;
- ``per_genre_top3``: for each genre, the share of its clips that have it in their top 3;
- ``piano_top2``: share of rendered VGMIDI pieces (every soundfont) with piano among the
  top-2 instruments.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: small matrices, busy cores

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from realtime.outputs import atomic_write  # noqa: E402
from tools.datasets import DEFAULT_CACHE, DEFAULT_DATA, group_folds  # noqa: E402

#: AllMusic genre -> the tag name moodtrack shows; genres with fewer clips are left out.
GENRES = {
    "Pop/Rock": "pop/rock", "Jazz": "jazz", "Electronic": "electronic", "International": "international",
    "R&B": "r&b/soul", "Blues": "blues", "Country": "country", "Vocal": "vocal", "Rap": "hip-hop",
    "Latin": "latin", "Reggae": "reggae", "Folk": "folk", "Stage & Screen": "soundtrack",
    "New Age": "new age", "Easy Listening": "easy listening", "Avant-Garde": "avant-garde",
    "Classical": "classical", "Religious": "religious",
}


def head_input(clip, n_embedding: int) -> np.ndarray:
    """Per update: the context-mean embedding and the tag probabilities."""
    return np.hstack([clip.X[:, :n_embedding], clip.meta["tags"].astype(np.float32)])


def clip_rows(clips, n_embedding):
    X = np.stack([head_input(c, n_embedding).mean(axis=0) for c in clips])
    names = list(GENRES)
    Y = np.array([[g in [s.strip() for s in str(c.meta["genres"]).split(";")] for g in names] for c in clips])
    return X.astype(np.float32), Y.astype(int)


def make_head(C: float = 0.5):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), OneVsRestClassifier(
        LogisticRegression(C=C, class_weight="balanced", max_iter=2000)))


def top3_scores(P: np.ndarray, Y: np.ndarray) -> dict:
    top = np.argsort(-P, axis=1)[:, :3]
    hit = np.array([Y[i, top[i]].any() for i in range(len(Y))])
    per = {}
    for j, g in enumerate(GENRES):
        m = Y[:, j] == 1
        if m.any():
            per[GENRES[g]] = float(np.mean([j in top[i] for i in np.flatnonzero(m)]))
    return {"top3_hit": float(hit[Y.any(axis=1)].mean()), "per_genre_top3": per,
            "per_genre_mean": float(np.mean(list(per.values())))}


def cross_validate(clips, n_embedding, *, folds=5, seed=0, C=0.5):
    orig = [c for c in clips if c.variant == "orig"]
    fold_of = group_folds([c.group for c in orig], folds, seed=seed)
    P = np.zeros((len(orig), len(GENRES)))
    _, Y = clip_rows(orig, n_embedding)
    for k in range(folds):
        train = [c for c in clips if fold_of.get(c.group) != k]
        test = [i for i, c in enumerate(orig) if fold_of[c.group] == k]
        Xtr, Ytr = clip_rows(train, n_embedding)
        head = make_head(C).fit(Xtr, Ytr)
        P[test] = head.predict_proba(clip_rows([orig[i] for i in test], n_embedding)[0])
    return top3_scores(P, Y)


def piano_check(vg_clips) -> dict:
    from realtime.vocab import InstrumentMap

    out = {}
    for c in vg_clips:
        names = c.meta["tag_names"]
        imap = InstrumentMap(names)
        s = imap(c.meta["tags"].astype(np.float32)).mean(axis=0)
        top2 = [imap.names[i] for i in np.argsort(-s)[:2]]
        out.setdefault(c.variant, []).append("piano" in top2)
    return {k: float(np.mean(v)) for k, v in out.items()}


def export(head, out: Path, n_in: int, meta: dict) -> Path:
    import onnx
    from skl2onnx import to_onnx

    onx = to_onnx(head, np.zeros((1, n_in), np.float32), target_opset=17,
                  options={id(head.steps[-1][1]): {"zipmap": False}})
    onnx.helper.set_model_props(onx, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, onx.SerializeToString())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--embedding", type=Path, default=ROOT / "models" / "embedding.onnx")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "tags.onnx")
    ap.add_argument("--report", type=Path, default=ROOT / "models" / "eval" / "tags_report.json")
    ap.add_argument("--variants", default="orig,aug1,aug2")
    ap.add_argument("--C", type=float, default=0.5)
    args = ap.parse_args(argv)
    from realtime.embedding import EmbeddingNetwork
    from tools.embdata import load_4q_emb, load_vgmidi_emb

    net = EmbeddingNetwork(args.embedding)
    clips = load_4q_emb(args.data, args.cache, net, variants=tuple(args.variants.split(",")))
    cv = cross_validate(clips, net.n_embedding, C=args.C)
    print(json.dumps(cv, indent=1))
    vg = load_vgmidi_emb(args.data, args.cache, net, soundfonts=("fluidr3", "musescore", "timgm"))
    for c in vg:
        c.meta["tag_names"] = net.tag_names
    piano = piano_check(vg)
    print("piano among the top-2 instruments:", piano)
    X, Y = clip_rows(clips, net.n_embedding)
    head = make_head(args.C).fit(X, Y)
    meta = {"model_name": "moodtrack-genres", "genre_names": ",".join(GENRES.values()),
            "embedding_sha": net.sha, "input": "ctx_mean embedding + tag probabilities",
            "training_data": "4Q clips (AllMusic genres), artist-disjoint CV",
            "cv": json.dumps(cv), "piano_top2": json.dumps(piano)}
    export(head, args.out, X.shape[1], meta)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({"genres_cv": cv, "piano_top2": piano, "C": args.C}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
