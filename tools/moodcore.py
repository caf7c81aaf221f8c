"""Shared training/evaluation code: design matrices, model families, and the tracker-style scores.

Used by ``tools/train.py`` (fit on everything, export) and ``tools/evaluate.py``
(group-disjoint cross-validation), and by the tests on generated data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.datasets import QUADRANT_SIGNS, Clip, measure_of

#: Default configuration (the one chosen by cross-validation; see models/MODEL.md).
DEFAULT_CONFIG = {
    "features": "emb",  # "emb" (the embedding network's pools), "hand" (mt-feat-4) or "both"
    "pools": "ctx_mean_sw,short_rel_sw,tonal",
    "model": "quad0.001",  # quadrant classifier (C 0.001); "ridge<alpha>" etc. regress (v, a)
    "q4_target": "blend",
    "share_4q": 0.7,  # share of the total sample weight given to 4Q (rest: VGMIDI)
    "stride": 4,  # train on every stride-th window (2 Hz updates -> 2 s apart)
    "span_s": 2.0,  # VGMIDI target averaged over the last span_s seconds
    "soundfonts": "fluidr3,musescore,timgm",
    "q4_variants": "orig,aug1,aug2",
    # Invariance pairs: each listed variant's windows minus the clean clip's at the same
    # update times (4Q: chains of the clip, "orig" clean; VGMIDI: other soundfonts, the
    # first of ``soundfonts`` clean; "rev1*3": rev1's clips weigh 3 times the others'); the
    # head is penalised for any output change along them (0: no penalty). Ridge:
    # ``inv_weight`` times the weight of the fit; quadrant head: ``inv_weight`` times the
    # weight of its L2 penalty (see QuadrantHead).
    "inv_pairs": "aug1,aug2,dlg1,rev1",
    "inv_weight": 10.0,
    # Quadrant head only: a small network (one hidden layer of ``mlp_hidden`` ReLU units, L2
    # ``mlp_alpha``) beside the linear classifier, their quadrant probabilities blended with
    # weight ``mlp_blend`` on the network (0 hidden units: the linear classifier alone).
    "mlp_hidden": 0,
    "mlp_alpha": 10.0,
    "mlp_blend": 0.5,
    "seed": 0,
}


# ------------------------------------------------------------------------- design matrix
def design(clips: list[Clip], *, stride: int = 1, share_4q: float = 0.5, signs: bool = False):
    """Stack clips into (X, Y, w): rows with a target only; each source gets its weight share.

    Within a source every clip (and every rendering/variant of it) weighs the same.
    ``signs``: Y holds the quadrant's signs (+-1, +-1) instead of the targets: for 4Q the
    annotated quadrant, for VGMIDI the signs of the listeners' curve at that time.
    """
    xs, ys, ws, src = [], [], [], []
    for c in clips:
        if c.meta.get("pair_only"):
            continue
        keep = np.isfinite(c.y).all(axis=1)
        keep[np.arange(keep.size) % stride != 0] = False
        if not keep.any():
            continue
        xs.append(c.X[keep])
        if signs and c.source == "4q":
            ys.append(np.tile(np.asarray(QUADRANT_SIGNS[c.meta["quadrant"]], float), (int(keep.sum()), 1)))
        elif signs:
            ys.append(np.where(c.y[keep] >= 0, 1.0, -1.0))
        else:
            ys.append(c.y[keep])
        ws.append(np.full(keep.sum(), 1.0 / keep.sum()))
        src.append(np.full(keep.sum(), c.source == "4q"))
    X = np.vstack(xs).astype(np.float32)
    Y = np.vstack(ys)
    w = np.concatenate(ws)
    is4q = np.concatenate(src)
    for mask, share in ((is4q, share_4q), (~is4q, 1.0 - share_4q)):
        if mask.any():
            w[mask] *= share / w[mask].sum()
    w *= len(w) / w.sum()
    return X, Y, w


def pair_variants(spec: str) -> dict[str, float]:
    """``"aug1,rev1*3"`` -> ``{"aug1": 1.0, "rev1": 3.0}``: invariance pair variants and the
    weight of each one's clips relative to the others'."""
    out = {}
    for item in (v.strip() for v in spec.split(",")):
        if item:
            name, _, factor = item.partition("*")
            out[name] = float(factor) if factor else 1.0
    return out


def invariance_pairs(clips: list[Clip], variants, *, clean_vgmidi: str = "fluidr3", stride: int = 1):
    """(D, u): rows ``X_variant - X_clean`` of the same clip at the same update times, for
    every clip in one of ``variants``, and their weights (each pair clip weighs the same,
    times its variant's factor where ``variants`` is a mapping name -> factor)."""
    factors = dict(variants) if isinstance(variants, dict) else {v: 1.0 for v in variants}
    clean = {(c.source, c.key): c for c in clips
             if c.variant == ("orig" if c.source == "4q" else clean_vgmidi)}
    ds, us = [], []
    for c in clips:
        if c.variant not in factors or (c.source, c.key) not in clean:
            continue
        ref = clean[(c.source, c.key)]
        _, i, j = np.intersect1d(np.round(c.t, 3), np.round(ref.t, 3), return_indices=True)
        i, j = i[::stride], j[::stride]
        if i.size:
            ds.append(c.X[i] - ref.X[j])
            us.append(np.full(i.size, factors[c.variant] / i.size))
    if not ds:
        return np.zeros((0, clips[0].X.shape[1]), np.float32), np.zeros(0)
    return np.vstack(ds).astype(np.float32), np.concatenate(us)


def penalise(model, X, Y, w, D, u, *, weight: float):
    """Refit the ridge of a fitted ``StandardScaler + Ridge`` pipeline with an invariance
    penalty: minimise  sum w (x b - y)^2 + alpha |b|^2 + weight * sum(w) * sum u (d b)^2,
    in the scaler's units (``u`` normalised to sum 1; the intercept is not penalised)."""
    scaler, ridge = model.steps[0][1], model.steps[-1][1]
    sd = scaler.scale_
    Xs = (X - scaler.mean_) / sd
    wn = w / w.sum()
    mx = wn @ Xs
    my = wn @ Y
    Xc = Xs - mx
    A = (Xc * w[:, None]).T @ Xc + ridge.alpha * np.eye(Xs.shape[1])
    if weight > 0 and len(D):
        Ds = D / sd
        A += weight * w.sum() * (Ds * (u / u.sum())[:, None]).T @ Ds
    B = (Xc * w[:, None]).T @ (Y - my)
    coef = np.linalg.solve(A, B).T
    ridge.coef_ = coef
    ridge.intercept_ = my - coef @ mx
    return model


def fit_head(clips: list[Clip], config: dict):
    """The mood head of ``config`` fitted on ``clips``. Returns (model, X, Y, w) of the fit."""
    quad = config["model"].startswith("quad")
    X, Y, w = design(clips, stride=config["stride"], share_4q=config["share_4q"], signs=quad)
    pairs = pair_variants(config.get("inv_pairs", ""))
    D = u = None
    weight = config.get("inv_weight", 0.0)
    if pairs and weight > 0:
        if not (quad or config["model"].startswith("ridge")):
            raise ValueError("inv_pairs needs a ridge or quadrant model")
        clean_vg = config["soundfonts"].split(",")[0]
        D, u = invariance_pairs(clips, pairs, clean_vgmidi=clean_vg, stride=config["stride"])
    if quad:
        model = make_model(config["model"], hidden=int(config.get("mlp_hidden", 0)),
                           alpha=float(config.get("mlp_alpha", 10.0)), blend=float(config.get("mlp_blend", 0.5)))
        model.fit(X, Y, w, pairs=D, pair_weights=u, weight=weight if D is not None else 0.0, seed=config["seed"])
        return model, X, Y, w
    model = fit_model(config["model"], X, Y, w, seed=config["seed"])
    if D is not None:
        penalise(model, X.astype(np.float64), Y, w, D.astype(np.float64), u, weight=weight)
    return model, X, Y, w


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


#: Valence and arousal signs of the quadrants Q1..Q4 (rows), the quadrant head's output map.
QUADRANT_SIGN_MATRIX = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])


class QuadrantHead:
    """Multinomial logistic regression over the four Russell quadrants, read as (v, a).

    ``predict`` gives valence = P(Q1) + P(Q4) - P(Q2) - P(Q3) (how much likelier a pleasant
    than an unpleasant quadrant) and arousal = P(Q1) + P(Q2) - P(Q3) - P(Q4), each in [-1, 1].
    ``fit`` minimises, in standardised units, ``C * sum w CE + 1/2 sum_k (|b_k|^2 +
    weight * sum u (d . b_k)^2)``: cross-entropy, L2, and an invariance penalty on the
    logit change along each pair row ``d`` (a clip through a chain minus the clean clip),
    solved by sklearn's L-BFGS after whitening the quadratic penalty.
    """

    def __init__(self, C: float = 1e-3, *, hidden: int = 0, alpha: float = 10.0, blend: float = 0.5):
        self.C = float(C)
        self.hidden, self.alpha, self.blend = int(hidden), float(alpha), float(blend) if hidden else 0.0

    def fit(self, X, Y, w, *, pairs=None, pair_weights=None, weight: float = 0.0, seed: int = 0):
        """``Y``: the quadrant's signs per row (``design(..., signs=True)``)."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier

        X = np.asarray(X, np.float64)
        labels = quadrant_from_signs(Y[:, 0], Y[:, 1])
        if set(np.unique(labels)) != {1, 2, 3, 4}:
            raise ValueError("the quadrant head needs training rows of all four quadrants")
        w = np.asarray(w, np.float64)
        self.mean_ = (w @ X) / w.sum()
        self.scale_ = np.sqrt((w @ (X - self.mean_) ** 2) / w.sum())
        self.scale_[self.scale_ < 1e-12] = 1.0
        Xs = (X - self.mean_) / self.scale_
        R = np.eye(X.shape[1])
        if weight > 0 and pairs is not None and len(pairs):
            Ds = np.asarray(pairs, np.float64) / self.scale_
            u = np.asarray(pair_weights, np.float64)
            R += weight * (Ds * (u / u.sum())[:, None]).T @ Ds
        T = np.linalg.inv(np.linalg.cholesky(R)).T  # b = T c turns the penalty into |c|^2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lr = LogisticRegression(C=self.C, max_iter=5000, tol=1e-6).fit(Xs @ T, labels, sample_weight=w)
        self.coef_ = T @ lr.coef_.T  # (n_features, 4), standardised units
        self.intercept_ = lr.intercept_.astype(np.float64)
        self.net_ = None
        if self.hidden:  # the network sees the same standardised inputs; no invariance penalty
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                net = MLPClassifier((self.hidden,), alpha=self.alpha, max_iter=60, batch_size=min(256, len(Xs)),
                                    learning_rate_init=1e-3, random_state=seed).fit(Xs, labels, sample_weight=w)
            self.net_ = [(W.astype(np.float64), b.astype(np.float64)) for W, b in zip(net.coefs_, net.intercepts_)]
        return self

    def logits(self, X) -> np.ndarray:
        """(n, 4) logits of the linear classifier."""
        return ((np.asarray(X, np.float64) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        """(n, 4) probabilities of Q1..Q4 (the linear classifier's, blended with the network's)."""
        p = _softmax(self.logits(X))
        if self.net_ is not None and self.blend > 0:
            (W1, b1), (W2, b2) = self.net_
            h = np.maximum(((np.asarray(X, np.float64) - self.mean_) / self.scale_) @ W1 + b1, 0.0)
            p = (1.0 - self.blend) * p + self.blend * _softmax(h @ W2 + b2)
        return p

    def predict(self, X) -> np.ndarray:
        """(n, 2) valence, arousal in [-1, 1]."""
        return self.predict_proba(X) @ QUADRANT_SIGN_MATRIX

    def to_onnx(self, n_features: int):
        """The head as one ONNX graph: ``X`` (n, n_features) -> ``variable`` (n, 2) valence,
        arousal, and ``quadrant_probability`` (n, 4); the standardisation folded in."""
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        def folded(W, b):  # a layer on standardised inputs -> the same layer on raw inputs
            return W / self.scale_[:, None], b - (self.mean_ / self.scale_) @ W

        W, b = folded(self.coef_, self.intercept_)
        init = {"W": W, "b": b, "signs": QUADRANT_SIGN_MATRIX}
        nodes = [helper.make_node("MatMul", ["X", "W"], ["z0"]), helper.make_node("Add", ["z0", "b"], ["z"])]
        if self.net_ is not None and self.blend > 0:
            (W1, b1), (W2, b2) = self.net_
            init["W1"], init["b1"] = folded(W1, b1)
            init.update(W2=W2, b2=b2, w_linear=np.array([1.0 - self.blend]), w_net=np.array([self.blend]))
            nodes += [helper.make_node("Softmax", ["z"], ["p_linear"], axis=1),
                      helper.make_node("MatMul", ["X", "W1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
                      helper.make_node("Relu", ["h1"], ["h"]),
                      helper.make_node("MatMul", ["h", "W2"], ["y0"]), helper.make_node("Add", ["y0", "b2"], ["y"]),
                      helper.make_node("Softmax", ["y"], ["p_net"], axis=1),
                      helper.make_node("Mul", ["p_linear", "w_linear"], ["q0"]),
                      helper.make_node("Mul", ["p_net", "w_net"], ["q1"]),
                      helper.make_node("Add", ["q0", "q1"], ["quadrant_probability"])]
        else:
            nodes.append(helper.make_node("Softmax", ["z"], ["quadrant_probability"], axis=1))
        nodes.append(helper.make_node("MatMul", ["quadrant_probability", "signs"], ["variable"]))
        graph = helper.make_graph(
            nodes, "moodtrack_quadrant_head",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
            [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 2]),
             helper.make_tensor_value_info("quadrant_probability", TensorProto.FLOAT, [None, 4])],
            initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in init.items()])
        onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="moodtrack")
        onx.ir_version = 8
        onnx.checker.check_model(onx)
        return onx


# ---------------------------------------------------------------------------- models
def make_model(name: str, seed: int = 0, **quadrant_options):
    """An unfitted regressor (n, n_features) -> (n, 2) that skl2onnx converts (``quad``: a
    :class:`QuadrantHead`, with ``quadrant_options`` for its network)."""
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name.startswith("quad"):  # "quad" or "quad<C>"
        return QuadrantHead(C=float(name[4:] or 1e-3), **quadrant_options)
    if name.startswith("ridge"):  # "ridge" or "ridge<alpha>"
        from sklearn.linear_model import Ridge

        return make_pipeline(StandardScaler(), Ridge(alpha=float(name[5:] or 30.0)))
    if name.startswith("mlp"):
        from sklearn.neural_network import MLPRegressor

        hidden = {"mlp": (128, 64), "mlp_small": (64,), "mlp_big": (256, 128)}[name]
        return make_pipeline(StandardScaler(), MLPRegressor(
            hidden_layer_sizes=hidden, alpha=1e-1, learning_rate_init=1e-3, batch_size=256,
            max_iter=60, early_stopping=False, random_state=seed, tol=1e-5))
    if name == "svr":
        from sklearn.svm import SVR

        return make_pipeline(StandardScaler(), MultiOutputRegressor(SVR(C=1.0, epsilon=0.1, cache_size=500)))
    if name == "gbr":
        from sklearn.ensemble import GradientBoostingRegressor

        return MultiOutputRegressor(GradientBoostingRegressor(
            n_estimators=300, max_depth=4, learning_rate=0.05, subsample=0.5, random_state=seed))
    if name in ("hgb", "hgb_big"):
        from sklearn.ensemble import HistGradientBoostingRegressor

        it, leaves = (200, 15) if name == "hgb" else (500, 31)
        return MultiOutputRegressor(HistGradientBoostingRegressor(
            max_iter=it, learning_rate=0.05, max_leaf_nodes=leaves, min_samples_leaf=100,
            l2_regularization=1.0, max_bins=64, early_stopping=False, random_state=seed))
    raise ValueError(f"unknown model {name!r}")


def fit_model(name: str, X, Y, w, seed: int = 0, stride_svr: int = 3):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    model = make_model(name, seed)
    last = model.steps[-1][0] if hasattr(model, "steps") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if name == "svr":  # kernel methods: fewer rows
            sl = slice(None, None, stride_svr)
            model.fit(np.ascontiguousarray(X[sl]), np.ascontiguousarray(Y[sl]),
                      **{f"{last}__sample_weight": np.ascontiguousarray(w[sl])})
        elif last is not None:
            model.fit(X, Y, **{f"{last}__sample_weight": w})
        else:
            model.fit(X, Y, sample_weight=w)
    return model


# ------------------------------------------------------------------------------ scores
def pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 3 or a.std() < 1e-12 or b.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def ccc(a, b) -> float:
    """Lin's concordance correlation coefficient."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 3:
        return float("nan")
    va, vb = a.var(), b.var()
    den = va + vb + (a.mean() - b.mean()) ** 2
    return float(2 * np.mean((a - a.mean()) * (b - b.mean())) / den) if den > 1e-12 else float("nan")


def quadrant_from_signs(v, a) -> np.ndarray:
    v, a = np.asarray(v), np.asarray(a)
    return np.where(a >= 0, np.where(v >= 0, 1, 2), np.where(v >= 0, 4, 3))


def runtime_outputs(raw: np.ndarray, scale) -> np.ndarray:
    """What the tracker shows: raw outputs times ``output_scale``, clipped to [-1, 1]."""
    return np.clip(raw * np.asarray(scale, float)[None, :], -1.0, 1.0)


def score_4q(clips: list[Clip], preds: list[np.ndarray]) -> dict:
    """Clip means of the tracker outputs vs the 4Q labels."""
    from sklearn.metrics import f1_score

    vm = np.array([p[:, 0].mean() for p in preds])
    am = np.array([p[:, 1].mean() for p in preds])
    q_true = np.array([int(c.meta["quadrant"][1]) for c in clips])
    sv = np.array([QUADRANT_SIGNS[c.meta["quadrant"]][0] for c in clips])
    sa = np.array([QUADRANT_SIGNS[c.meta["quadrant"]][1] for c in clips])
    q_pred = quadrant_from_signs(vm, am)
    return {
        "q4_n": len(clips),
        "q4_quadrant_acc": float(np.mean(q_pred == q_true)),
        "q4_macro_f1": float(f1_score(q_true, q_pred, average="macro", labels=[1, 2, 3, 4])),
        "q4_valence_sign_acc": float(np.mean(np.where(vm >= 0, 1, -1) == sv)),
        "q4_arousal_sign_acc": float(np.mean(np.where(am >= 0, 1, -1) == sa)),
        "q4_valence_r": pearson(vm, [c.meta["v_tag"] for c in clips]),
        "q4_arousal_r": pearson(am, [c.meta["a_tag"] for c in clips]),
    }


def measure_curve(clip: Clip, pred: np.ndarray):
    """Per-measure means of predictions (window end time -> measure) and the listener curves."""
    m = clip.meta["measures"]
    idx = measure_of(clip.t, clip.meta["duration_s"], m)
    ok = idx >= 0
    cnt = np.bincount(idx[ok], minlength=m)
    have = cnt > 0
    out = {}
    for j, dim in enumerate(("valence", "arousal")):
        s = np.bincount(idx[ok], weights=pred[ok, j], minlength=m)
        truth = np.asarray(clip.meta[dim], float)
        sel = have & np.isfinite(truth)
        out[dim] = (s[sel] / cnt[sel], truth[sel])
    return out


def score_vgmidi(clips: list[Clip], preds: list[np.ndarray]) -> dict:
    res: dict = {"vg_n": len(clips)}
    for dim, tag in (("valence", "v"), ("arousal", "a")):
        rs, cs, pp, tt = [], [], [], []
        for c, p in zip(clips, preds):
            pm, tm = measure_curve(c, p)[dim]
            rs.append(pearson(pm, tm))
            cs.append(ccc(pm, tm))
            pp.append(pm)
            tt.append(tm)
        res[f"vg_{tag}_piece_r"] = float(np.nanmean(rs)) if np.isfinite(rs).any() else float("nan")
        res[f"vg_{tag}_piece_r_median"] = float(np.nanmedian(rs)) if np.isfinite(rs).any() else float("nan")
        res[f"vg_{tag}_piece_ccc"] = float(np.nanmean(cs)) if np.isfinite(cs).any() else float("nan")
        res[f"vg_{tag}_pooled_r"] = pearson(np.concatenate(pp), np.concatenate(tt)) if pp else float("nan")
        res[f"vg_{tag}_n_pieces_scored"] = int(np.isfinite(rs).sum())
    res.update(score_segments(clips, preds))
    return res


def score_segments(clips: list[Clip], preds: list[np.ndarray], *, seconds: float = 30.0) -> dict:
    """Pieces cut into ``seconds``-long excerpts, scored like 4Q clips: the mean of the
    tracker outputs in an excerpt -> quadrant, against the quadrant of the listeners' mean
    curve over it (excerpts with targets for at least two thirds of their length). A
    stand-in for piano music from elsewhere, labelled per excerpt."""
    from sklearn.metrics import f1_score

    pv, tv = [], []
    for c, p in zip(clips, preds):
        for start in np.arange(0.0, c.t.max(initial=0.0), seconds):
            m = (c.t > start) & (c.t <= start + seconds) & np.isfinite(c.y).all(axis=1)
            if m.sum() * (c.t[1] - c.t[0] if c.t.size > 1 else 1.0) < seconds * 2 / 3:
                continue
            pv.append(p[m].mean(axis=0))
            tv.append(c.y[m].mean(axis=0))
    if not pv:
        return {"vg_seg_n": 0}
    pv, tv = np.array(pv), np.array(tv)
    qp, qt = quadrant_from_signs(pv[:, 0], pv[:, 1]), quadrant_from_signs(tv[:, 0], tv[:, 1])
    return {"vg_seg_n": len(pv),
            "vg_seg_macro_f1": float(f1_score(qt, qp, average="macro", labels=[1, 2, 3, 4], zero_division=0)),
            "vg_seg_valence_sign_acc": float(np.mean((pv[:, 0] >= 0) == (tv[:, 0] >= 0))),
            "vg_seg_arousal_sign_acc": float(np.mean((pv[:, 1] >= 0) == (tv[:, 1] >= 0)))}


@dataclass
class FoldResult:
    scores: dict
    raw_test: np.ndarray  # raw window outputs of the test clips (for scale / residuals)
    y_test: np.ndarray


def summarize(folds: list[dict]) -> dict:
    """mean and std over folds for every numeric score."""
    keys = sorted({k for f in folds for k in f if isinstance(f[k], (int, float))})
    out = {}
    for k in keys:
        vals = np.array([f.get(k, np.nan) for f in folds], float)
        out[k] = {"mean": float(np.nanmean(vals)), "std": float(np.nanstd(vals)),
                  "folds": [None if not np.isfinite(x) else round(float(x), 4) for x in vals]}
    return out


def output_scale_from(raw: np.ndarray, target: float = 0.9, q: float = 95.0) -> tuple[float, float]:
    """Scale so that the q-th percentile of |raw output| maps to ``target``."""
    p = np.percentile(np.abs(raw), q, axis=0)
    return tuple(float(target / max(x, 1e-3)) for x in p)  # type: ignore[return-value]
