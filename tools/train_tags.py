"""Train the tag head (``models/tags.onnx``): AllMusic genres on the 4Q clips, instruments on
the rendered arrangements (``tools/arrangements.py``), and measure the tags.

    python tools/train_tags.py --data ../shared/data [--out models/tags.onnx]

The head is one logistic regression per genre and per head instrument on the update's
context embedding and tag probabilities (what :class:`realtime.embedding.EmbeddingExtractor`
gives every update), exported as one linear layer and a sigmoid. Genres are trained on clip
means of the clean and augmented 4Q clips; instruments on updates of the arrangements
rendered through FluidR3 and MuseScore, alone and laid over real 4Q clips (so that the head
hears the instruments among real music, not the renderer). Scores:

- ``top3_hit`` (5-fold, by artist): share of clips with one of their AllMusic genres among
  the top-3 genres as shown (pop and rock both stand for AllMusic's Pop/Rock);
- ``per_genre_top3``: for each genre, the share of its clips that have it in their top 3;
- instruments (5-fold, by piece; test pieces through the seen soundfonts and through
  TimGM6mb, which no fold trains on): per instrument the ROC AUC of the clip-mean score,
  for the head and for the teacher tags where they name it;
- ``piano_top2``: share of rendered VGMIDI pieces (every soundfont) with piano among the
  top-2 instruments as shown.
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


#: Instruments the head gives (the rest come from the teacher tags, see realtime/vocab.py).
HEAD_INSTRUMENTS = ("brass", "bass")
#: Soundfonts the instrument head trains on; TimGM6mb is kept for the unseen-soundfont check.
TRAIN_SOUNDFONTS = ("fluidr3", "musescore")


def head_input(clip, n_embedding: int) -> np.ndarray:
    """Per update: the context-mean embedding and the tag probabilities."""
    return np.hstack([clip.X[:, :n_embedding], clip.meta["tags"].astype(np.float32)])


def clip_rows(clips, n_embedding):
    X = np.stack([head_input(c, n_embedding).mean(axis=0) for c in clips])
    names = list(GENRES)
    Y = np.array([[g in [s.strip() for s in str(c.meta["genres"]).split(";")] for g in names] for c in clips])
    return X.astype(np.float32), Y.astype(int)


def make_head(C: float = 0.5, *, balanced: bool = True):
    """Standardised inputs, one logistic regression per tag; ``balanced``: classes weighted
    equally (genres), else the scores keep the training prior (instruments: a probability,
    not 0.5 wherever the head is unsure)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), OneVsRestClassifier(
        LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=2000)))


def shown_genres(P: np.ndarray, tags: np.ndarray, tag_names) -> tuple[tuple[str, ...], np.ndarray]:
    """The genres as moodtrack shows them (``realtime.vocab.GenreMap``) from head scores."""
    from realtime.vocab import GenreMap

    gm = GenreMap(tuple(GENRES.values()), tag_names)
    return gm.names, gm(P, tags)


def _allmusic_of(name: str) -> str | None:
    """The AllMusic genre a shown genre stands for in the scores (pop, rock: Pop/Rock)."""
    from realtime.vocab import DERIVED_GENRES

    if name in DERIVED_GENRES and DERIVED_GENRES[name][0] == ("pop/rock",):
        name = "pop/rock"
    inv = {v: k for k, v in GENRES.items()}
    return inv.get(name)


def top3_scores(P: np.ndarray, Y: np.ndarray, tags: np.ndarray | None = None, tag_names=()) -> dict:
    """Top-3 figures of head scores ``P`` against AllMusic labels ``Y``; with ``tags``, of the
    genres as shown (derived genres count for their AllMusic parent)."""
    names = list(GENRES.values())
    if tags is not None:
        shown, P = shown_genres(P, tags, tag_names)
        names = list(shown)
    col = {g: j for j, g in enumerate(GENRES)}
    label_col = [col.get(_allmusic_of(n)) for n in names]
    top = np.argsort(-P, axis=1)[:, :3]
    hit = np.array([any(label_col[j] is not None and Y[i, label_col[j]] for j in top[i]) for i in range(len(Y))])
    per = {}
    for j, g in enumerate(GENRES):
        m = Y[:, j] == 1
        if m.any():
            per[GENRES[g]] = float(np.mean([any(label_col[k] == j for k in top[i]) for i in np.flatnonzero(m)]))
    return {"top3_hit": float(hit[Y.any(axis=1)].mean()), "per_genre_top3": per,
            "per_genre_mean": float(np.mean(list(per.values())))}


def cross_validate(clips, n_embedding, *, tag_names, folds=5, seed=0, C=0.5):
    orig = [c for c in clips if c.variant == "orig"]
    fold_of = group_folds([c.group for c in orig], folds, seed=seed)
    P = np.zeros((len(orig), len(GENRES)))
    _, Y = clip_rows(orig, n_embedding)
    tags = np.stack([c.meta["tags"].astype(np.float32).mean(axis=0) for c in orig])
    for k in range(folds):
        train = [c for c in clips if fold_of.get(c.group) != k]
        test = [i for i, c in enumerate(orig) if fold_of[c.group] == k]
        Xtr, Ytr = clip_rows(train, n_embedding)
        head = make_head(C).fit(Xtr, Ytr)
        P[test] = head.predict_proba(clip_rows([orig[i] for i in test], n_embedding)[0])
    return {"allmusic": top3_scores(P, Y), "shown": top3_scores(P, Y, tags, tag_names)}


#: Instrument training uses every EVERY-th update from MIN_T s into an excerpt (a full patch).
MIN_T, EVERY = 3.0, 2


def _training_updates(clip) -> np.ndarray:
    return np.flatnonzero(clip.t >= MIN_T)[::EVERY]


def instrument_rows(clips, n_embedding, names):
    """Per-update head inputs (:func:`_training_updates`) and their instrument labels."""
    X, Y = [], []
    for c in clips:
        keep = _training_updates(c)
        X.append(head_input(c, n_embedding)[keep])
        Y.append(np.tile([n in c.meta["instruments"] for n in names], (len(keep), 1)))
    return np.vstack(X).astype(np.float32), np.vstack(Y).astype(int)


def _soundfont(clip) -> str:
    return clip.variant.split("+")[0]


def instrument_cv(arr, n_embedding, tag_names, *, folds=5, seed=0, C=0.5) -> dict:
    """Per instrument, ROC AUC of clip-mean scores on pieces no fold trained on: the head's
    (trained on every arrangement instrument) and the teacher tags' where they name it."""
    from sklearn.metrics import roc_auc_score

    from realtime.vocab import InstrumentMap
    from tools.arrangements import INSTRUMENTS

    names = list(INSTRUMENTS)
    fold_of = group_folds([c.group for c in arr], folds, seed=seed)
    teacher = InstrumentMap(tag_names)
    scores: dict[str, tuple[list, list, list]] = {}
    for k in range(folds):
        train = [c for c in arr if fold_of[c.group] != k and _soundfont(c) in TRAIN_SOUNDFONTS]
        Xtr, Ytr = instrument_rows(train, n_embedding, names)
        head = make_head(C, balanced=False).fit(Xtr, Ytr)
        for c in arr:
            if fold_of[c.group] != k:
                continue
            which = ("seen soundfonts" if _soundfont(c) in TRAIN_SOUNDFONTS else "unseen soundfont (TimGM6mb)") + \
                (", over real music" if "+" in c.variant else ", alone")
            scores.setdefault(which, ([], [], []))
            later = c.t >= MIN_T
            lab, hs, ts = scores[which]
            lab.append([n in c.meta["instruments"] for n in names])
            hs.append(head.predict_proba(head_input(c, n_embedding)[later]).mean(axis=0))
            t = teacher(c.meta["tags"].astype(np.float32)[later]).mean(axis=0)
            ts.append([t[teacher.names.index(n)] if n in teacher.names else np.nan for n in names])
    out = {}
    for which, (lab, hs, ts) in scores.items():
        lab, hs, ts = np.array(lab), np.array(hs), np.array(ts)
        out[which] = {n: {"clips_with": int(lab[:, j].sum()),
                          "head_auc": round(float(roc_auc_score(lab[:, j], hs[:, j])), 3),
                          "teacher_auc": (None if np.isnan(ts[:, j]).all()
                                          else round(float(roc_auc_score(lab[:, j], ts[:, j])), 3))}
                      for j, n in enumerate(names) if 0 < lab[:, j].sum() < len(lab)}
    return out


def fit_calibration(arr, tag_names, head_names) -> dict[str, list[float]]:
    """Per teacher-tag instrument that the arrangements label: (a, b) of a logistic
    calibration ``sigmoid(a * logit(t) + b)`` of its tag score *t* per update to presence."""
    from sklearn.linear_model import LogisticRegression

    from realtime.vocab import InstrumentMap
    from tools.arrangements import INSTRUMENTS

    teacher = InstrumentMap(tag_names)
    out = {}
    for name in INSTRUMENTS:
        if name in head_names or name not in teacher.names:
            continue
        j = teacher.names.index(name)
        xs, ys = [], []
        for c in arr:
            keep = _training_updates(c)
            t = np.clip(teacher(c.meta["tags"].astype(np.float32)[keep])[:, j].astype(np.float64), 1e-6, 1 - 1e-6)
            xs.append(np.log(t / (1 - t)))
            ys.append(np.full(len(keep), name in c.meta["instruments"]))
        lr = LogisticRegression(C=100.0).fit(np.concatenate(xs)[:, None], np.concatenate(ys))
        out[name] = [round(float(lr.coef_[0, 0]), 5), round(float(lr.intercept_[0]), 5)]
    return out


def piano_check(vg_clips, tag_names, head, n_embedding=200, head_names=(), calibration=None) -> dict:
    """Share of rendered VGMIDI pieces (per soundfont) with piano among the top-2 instruments
    as moodtrack shows them (teacher tags, and the head's instruments when given)."""
    from realtime.vocab import InstrumentMap

    imap = InstrumentMap(tag_names, head_names, calibration)
    out = {}
    for c in vg_clips:
        s = shown_instruments(c, imap, head, n_embedding)
        top2 = [imap.names[i] for i in np.argsort(-s)[:2]]
        out.setdefault(c.variant, []).append("piano" in top2)
    return {k: float(np.mean(v)) for k, v in out.items()}


def shown_instruments(clip, imap, layer, n_embedding: int) -> np.ndarray:
    """A clip's mean instrument scores as moodtrack shows them (``imap.names``): the tag
    layer's instrument columns (its last ``len(imap.head_names)``) and the teacher tags."""
    k = len(imap.head_names)
    head = head_probabilities(layer, head_input(clip, n_embedding))[:, -k:] if k else None
    return imap(clip.meta["tags"].astype(np.float32), head).mean(axis=0)


def linear_layer(pipe) -> tuple[np.ndarray, np.ndarray]:
    """(W (n_in, k), b (k)) of a StandardScaler + one-vs-rest logistic regression pipeline:
    its probabilities are sigmoid(x @ W + b)."""
    scaler, ovr = pipe.steps[0][1], pipe.steps[-1][1]
    coef = np.vstack([e.coef_ for e in ovr.estimators_])  # (k, n_in)
    icpt = np.array([e.intercept_[0] for e in ovr.estimators_])
    W = (coef / scaler.scale_).T
    return W, icpt - coef @ (scaler.mean_ / scaler.scale_)


def head_probabilities(layer, x: np.ndarray) -> np.ndarray:
    W, b = layer
    return 1.0 / (1.0 + np.exp(-(np.asarray(x, np.float64) @ W + b)))


def export(layer, out: Path, meta: dict) -> Path:
    """One MatMul + Add + Sigmoid graph: ``features`` (n, n_in) -> ``probabilities`` (n, k)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    W, b = layer
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "W"], ["z0"]), helper.make_node("Add", ["z0", "b"], ["z"]),
         helper.make_node("Sigmoid", ["z"], ["probabilities"])],
        "moodtrack_tags",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, W.shape[0]])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, W.shape[1]])],
        initializer=[numpy_helper.from_array(W.astype(np.float32), "W"),
                     numpy_helper.from_array(b.astype(np.float32), "b")])
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="moodtrack")
    onnx.checker.check_model(onx)
    onnx.helper.set_model_props(onx, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, onx.SerializeToString())
    return out


def instruments_by_genre(clips, net, layer, head_names, calibration=None) -> dict:
    """Mean clip score of each shown instrument over the 4Q clips of each AllMusic genre (a
    sanity check on real recordings, which carry no instrument labels)."""
    from realtime.vocab import InstrumentMap

    imap = InstrumentMap(net.tag_names, head_names, calibration)
    S = np.stack([shown_instruments(c, imap, layer, net.n_embedding) for c in clips])
    out = {}
    for g, name in GENRES.items():
        m = np.array([g in [s.strip() for s in str(c.meta["genres"]).split(";")] for c in clips])
        if m.sum() >= 10:
            out[name] = {n: round(float(S[m, j].mean()), 3) for j, n in enumerate(imap.names)}
    return out


def top2_shares(clips, net, layer, head_names, calibration=None) -> dict:
    """Share of clips with each instrument among their top-2 clip-level instruments."""
    from realtime.vocab import InstrumentMap

    imap = InstrumentMap(net.tag_names, head_names, calibration)
    counts = dict.fromkeys(imap.names, 0)
    for c in clips:
        s = shown_instruments(c, imap, layer, net.n_embedding)
        for i in np.argsort(-s)[:2]:
            counts[imap.names[i]] += 1
    return {k: round(v / len(clips), 3) for k, v in counts.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--embedding", type=Path, default=ROOT / "models" / "embedding.onnx")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "tags.onnx")
    ap.add_argument("--report", type=Path, default=ROOT / "models" / "eval" / "tags_report.json")
    ap.add_argument("--variants", default="orig,aug1,aug2")
    ap.add_argument("--C", type=float, default=0.5)
    ap.add_argument("--arrangement-variants", default="orig,over4q",
                    help="the arrangements alone (orig) and over real 4Q music (over4q)")
    ap.add_argument("--head-instruments", default=",".join(HEAD_INSTRUMENTS),
                    help="instruments the head gives (the rest: teacher tags)")
    args = ap.parse_args(argv)
    from realtime.embedding import EmbeddingNetwork
    from tools.embdata import load_4q_emb, load_arrangement_emb, load_vgmidi_emb

    net = EmbeddingNetwork(args.embedding)
    E = net.n_embedding
    clips = load_4q_emb(args.data, args.cache, net, variants=tuple(args.variants.split(",")))
    cv = cross_validate(clips, E, tag_names=net.tag_names, C=args.C)
    print(json.dumps(cv, indent=1))
    arr = load_arrangement_emb(args.cache, net, variants=tuple(args.arrangement_variants.split(",")))
    inst_cv = instrument_cv(arr, E, net.tag_names, C=args.C)
    print(json.dumps(inst_cv, indent=1))

    X, Y = clip_rows(clips, E)
    genre_layer = linear_layer(make_head(args.C).fit(X, Y))
    head_names = tuple(args.head_instruments.split(",")) if args.head_instruments else ()
    Xi, Yi = instrument_rows([c for c in arr if _soundfont(c) in TRAIN_SOUNDFONTS], E, head_names)
    inst_layer = linear_layer(make_head(args.C, balanced=False).fit(Xi, Yi))
    layer = (np.hstack([genre_layer[0], inst_layer[0]]), np.concatenate([genre_layer[1], inst_layer[1]]))

    calibration = fit_calibration([c for c in arr if _soundfont(c) in TRAIN_SOUNDFONTS], net.tag_names, head_names)
    print("teacher-tag calibration:", calibration)
    vg = load_vgmidi_emb(args.data, args.cache, net, soundfonts=("fluidr3", "musescore", "timgm"))
    piano = piano_check(vg, net.tag_names, layer, E, head_names, calibration)
    print("piano among the top-2 instruments:", piano)
    q4 = [c for c in clips if c.variant == "orig"]
    by_genre = instruments_by_genre(q4, net, layer, head_names, calibration)
    top2 = top2_shares(q4, net, layer, head_names, calibration)
    print("share of 4Q clips with each instrument among their top 2:", top2)
    meta = {"model_name": "moodtrack-tags", "genre_names": ",".join(GENRES.values()),
            "instrument_names": ",".join(head_names), "instrument_calibration": json.dumps(calibration),
            "embedding_sha": net.sha, "input": "ctx_mean embedding + tag probabilities",
            "training_data": "genres: 4Q clips (AllMusic genres), artist-disjoint CV; instruments: "
                             "VGMIDI arranged for GM instruments (tools/arrangements.py), piece-disjoint CV",
            "cv": json.dumps(cv["shown"]), "piano_top2": json.dumps(piano)}
    export(layer, args.out, meta)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.report, json.dumps({"genres_cv": cv, "instruments_cv": inst_cv, "piano_top2": piano,
                                          "head_instruments": head_names, "instrument_calibration": calibration,
                                          "instruments_by_genre": by_genre, "q4_top2_share": top2,
                                          "C": args.C}, indent=1).encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
