"""Group-disjoint cross-validation of the mood model, scored the way the tracker is used.

    python tools/evaluate.py --data ../shared/data [--model mlp] [--folds 5] [--out models/eval]

4Q is split by artist and VGMIDI by piece (one fold assignment each, fixed seed); every
fold trains on the other folds' clips (all their augmentations/renderings) and scores the
held-out clips as heard live: each clip runs through the streaming extractor at 2 Hz, the
model's outputs are scaled and clipped like the tracker's, then

- 4Q: the clip's mean valence/arousal -> quadrant from their signs; accuracy, macro-F1,
  valence/arousal sign accuracy, Pearson r of clip means with the tag-derived values;
- VGMIDI (FluidR3 rendering): predictions averaged per measure vs the listeners' mean
  curve: per-piece Pearson r and CCC (mean over pieces), and the pooled r.

Figures are mean and spread (std) over folds. A fixed ~15 % of artists and pieces
(``tools.datasets.holdout_group``) is left out of the CV altogether; ``--final-check``
trains on the rest and scores those once.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: small matrices, busy cores

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.datasets import DEFAULT_CACHE, DEFAULT_DATA, group_folds, holdout_group, load_4q, load_vgmidi  # noqa: E402
from tools.moodcore import (DEFAULT_CONFIG, fit_head, output_scale_from, pair_variants, quadrant_from_signs,  # noqa: E402
                            runtime_outputs,
                            score_4q, score_vgmidi, summarize)

EVAL_4Q_VARIANT = "orig"
EVAL_VG_SOUNDFONT = "fluidr3"


DEFAULT_EMBEDDING = ROOT / "models" / "embedding.onnx"


def _names(s: str) -> tuple[str, ...]:
    return tuple(x for x in s.split(",") if x)


def load_all(data, cache, config, *, embedding=DEFAULT_EMBEDDING) -> list:
    """Every training clip with ``X`` as the head sees it (``config['features']``)."""
    kind = config.get("features", "hand")
    hand = emb = None
    if kind in ("hand", "both"):
        hand = load_4q(data, cache, variants=_names(config["q4_variants"]), target_mode=config["q4_target"])
        hand += load_vgmidi(data, cache, soundfonts=_names(config["soundfonts"]), span_s=config["span_s"])
        if kind == "hand":
            return hand
    from realtime.embedding import EmbeddingNetwork
    from tools.embdata import load_4q_emb, load_vgmidi_emb, select_pools

    net = EmbeddingNetwork(embedding)
    emb = load_4q_emb(data, cache, net, variants=_names(config["q4_variants"]), target_mode=config["q4_target"])
    extra = [v for v in pair_variants(config.get("inv_pairs", "")) if v not in _names(config["q4_variants"])
             and v not in _names(config["soundfonts"])]
    if extra:  # chains used only as invariance pairs, never as training rows
        for c in load_4q_emb(data, cache, net, variants=extra, target_mode=config["q4_target"]):
            c.meta["pair_only"] = True
            emb.append(c)
    emb += load_vgmidi_emb(data, cache, net, soundfonts=_names(config["soundfonts"]), span_s=config["span_s"])
    pools = _names(config["pools"])
    for c in emb:
        c.X = select_pools(c.X, pools, net.n_embedding)
    if kind == "emb":
        return emb
    by_key = {(c.source, c.key, c.variant): c for c in hand}
    out = []
    for c in emb:  # both: the two on the same 2-Hz grid (update times match from t = 1 s)
        h = by_key.get((c.source, c.key, c.variant))
        if h is None:
            continue
        n = min(len(c.t), len(h.t))
        c.t, c.y, c.X = c.t[:n], c.y[:n], np.hstack([c.X[:n], h.X[:n]])
        out.append(c)
    return out


def _split_eval(clips):
    q = [c for c in clips if c.source == "4q" and c.variant == EVAL_4Q_VARIANT]
    v = [c for c in clips if c.source == "vgmidi" and c.variant == EVAL_VG_SOUNDFONT]
    return q, v


def train_and_score(train, test, config, *, log=None) -> tuple[dict, dict]:
    """Fit on ``train`` clips, score ``test`` clips. Returns (scores, extras)."""
    t0 = time.time()
    model, X, Y, w = fit_head(train, config)
    fit_s = time.time() - t0
    # The output scale is what train.py would export: from the model's training outputs.
    scale = output_scale_from(model.predict(X[::5]))
    q, v = _split_eval(test)
    raw_q = [model.predict(c.X) for c in q]
    raw_v = [model.predict(c.X) for c in v]
    scores = {**score_4q(q, [runtime_outputs(r, scale) for r in raw_q]),
              **score_vgmidi(v, [runtime_outputs(r, scale) for r in raw_v]),
              "fit_s": fit_s, "n_train_rows": int(len(X))}
    raw = np.vstack(raw_q + raw_v)
    y = np.vstack([c.y for c in q + v])
    ok = np.isfinite(y).all(axis=1)
    resid = raw[ok] - y[ok]
    extras = {"raw": raw, "scale": scale, "model": model, "resid_sq": (resid ** 2).sum(axis=0), "n": int(ok.sum()),
              "q_clips": q, "q_preds": [runtime_outputs(r, scale) for r in raw_q],
              "v_clips": v, "v_preds": [runtime_outputs(r, scale) for r in raw_v]}
    if log:
        log(f"  fit {fit_s:.0f}s rows={len(X)} F1={scores['q4_macro_f1']:.3f} "
            f"Asign={scores['q4_arousal_sign_acc']:.3f} Vsign={scores['q4_valence_sign_acc']:.3f} "
            f"vg r V={scores['vg_v_piece_r']:.3f} A={scores['vg_a_piece_r']:.3f} "
            f"piano excerpts F1={scores.get('vg_seg_macro_f1', float('nan')):.3f}")
    return scores, extras


def cross_validate(clips, config, *, n_folds: int = 5, probes=(), log=print) -> dict:
    """Group-disjoint CV on the development groups (hold-out groups excluded).

    ``probes``: 4Q clips through a signal chain (e.g. dialogue over the music), never
    trained on: each fold's model also scores those of its test groups, and the report's
    ``probe_agreement`` is, per chain, the share whose clip-mean quadrant is the clean clip's.
    """
    dev = [c for c in clips if not holdout_group(c.group, c.source)]
    fold_of = {}
    for src in ("4q", "vgmidi"):
        fold_of.update({(src, g): k for g, k in
                        group_folds([c.group for c in dev if c.source == src], n_folds,
                                    seed=config["seed"]).items()})
    folds, raws, resid_sq, n = [], [], np.zeros(2), 0
    pooled = {"q_clips": [], "q_preds": [], "v_clips": [], "v_preds": []}
    agree: dict[str, list[bool]] = {}
    for k in range(n_folds):
        train = [c for c in dev if fold_of[(c.source, c.group)] != k]
        test = [c for c in dev if fold_of[(c.source, c.group)] == k]
        log(f"fold {k + 1}/{n_folds}: train {len(train)} clips, test {len(test)}")
        s, e = train_and_score(train, test, config, log=log)
        clean = {c.key: p.mean(axis=0) for c, p in zip(e["q_clips"], e["q_preds"])}
        for c in probes:
            if fold_of.get((c.source, c.group)) == k and c.key in clean and len(c.X):
                m = runtime_outputs(e["model"].predict(c.X), e["scale"]).mean(axis=0)
                agree.setdefault(c.variant, []).append(quadrant_from_signs(*m) == quadrant_from_signs(*clean[c.key]))
        folds.append(s)
        raws.append(e["raw"])
        resid_sq += e["resid_sq"]
        n += e["n"]
        for key in pooled:
            pooled[key] += e[key]
    return {
        "config": config, "n_folds": n_folds,
        "n_groups": {"4q_artists": len({c.group for c in dev if c.source == "4q"}),
                     "vgmidi_pieces": len({c.group for c in dev if c.source == "vgmidi"})},
        "summary": summarize(folds), "folds": folds,
        "residual_std": [float(x) for x in np.sqrt(resid_sq / max(n, 1))],
        "raw_output_p95": [float(x) for x in np.percentile(np.abs(np.vstack(raws)), 95, axis=0)],
        "probe_agreement": {v: {"agreement": float(np.mean(a)), "n": len(a)} for v, a in agree.items()},
        "_pooled": pooled,
    }


def final_check(clips, config, *, log=print) -> dict:
    """Train on all development groups, score the hold-out groups (look at it once)."""
    dev = [c for c in clips if not holdout_group(c.group, c.source)]
    held = [c for c in clips if holdout_group(c.group, c.source)]
    s, e = train_and_score(dev, held, config, log=log)
    return {"config": config, "scores": s, "_model": (e["model"], e["scale"]),
            "n_groups": {"4q_artists": len({c.group for c in held if c.source == "4q"}),
                         "vgmidi_pieces": len({c.group for c in held if c.source == "vgmidi"})}}


# -------------------------------------------------------------------------- reporting
TARGETS = {"q4_macro_f1": 0.76, "q4_arousal_sign_acc": 0.90, "vg_v_piece_r": 0.35, "vg_a_piece_r": 0.35,
           "vg_seg_macro_f1": 0.50}
ROWS = [
    ("q4_quadrant_acc", "4Q quadrant accuracy"), ("q4_macro_f1", "4Q quadrant macro-F1"),
    ("q4_valence_sign_acc", "4Q valence-sign accuracy"), ("q4_arousal_sign_acc", "4Q arousal-sign accuracy"),
    ("q4_valence_r", "4Q Pearson r, clip-mean valence vs tags"),
    ("q4_arousal_r", "4Q Pearson r, clip-mean arousal vs tags"),
    ("vg_v_piece_r", "VGMIDI per-piece Pearson r, valence"), ("vg_a_piece_r", "VGMIDI per-piece Pearson r, arousal"),
    ("vg_v_piece_ccc", "VGMIDI per-piece CCC, valence"), ("vg_a_piece_ccc", "VGMIDI per-piece CCC, arousal"),
    ("vg_v_pooled_r", "VGMIDI pooled r, valence"), ("vg_a_pooled_r", "VGMIDI pooled r, arousal"),
    ("vg_seg_macro_f1", "VGMIDI 30-s excerpts (piano from unseen pieces): quadrant macro-F1"),
    ("vg_seg_valence_sign_acc", "VGMIDI 30-s excerpts: valence-sign accuracy"),
    ("vg_seg_arousal_sign_acc", "VGMIDI 30-s excerpts: arousal-sign accuracy"),
]


def markdown_table(summary: dict, final: dict | None = None) -> str:
    head = "| score | CV mean ± std | target |" + (" final check |" if final else "")
    sep = "|---|---|---|" + ("---|" if final else "")
    lines = [head, sep]
    for key, label in ROWS:
        s = summary.get(key)
        if s is None:
            continue
        tgt = f"≥ {TARGETS[key]:.2f}" if key in TARGETS else ""
        row = f"| {label} | {s['mean']:.3f} ± {s['std']:.3f} | {tgt} |"
        if final:
            row += f" {final['scores'].get(key, float('nan')):.3f} |"
        lines.append(row)
    return "\n".join(lines)


def figures(report: dict, outdir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tools.moodcore import measure_curve, pearson

    outdir.mkdir(parents=True, exist_ok=True)
    pooled = report["_pooled"]
    paths = []
    # 1. 4Q clip means, coloured by annotated quadrant.
    fig, ax = plt.subplots(figsize=(5.5, 5))
    colours = {"Q1": "goldenrod", "Q2": "crimson", "Q3": "royalblue", "Q4": "seagreen"}
    for qn, col in colours.items():
        pts = np.array([(p[:, 0].mean(), p[:, 1].mean()) for c, p in zip(pooled["q_clips"], pooled["q_preds"])
                        if c.meta["quadrant"] == qn])
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=9, c=col, label=qn, alpha=0.7)
    ax.axhline(0, c="k", lw=0.5)
    ax.axvline(0, c="k", lw=0.5)
    ax.set(xlabel="predicted valence (clip mean)", ylabel="predicted arousal (clip mean)",
           title="4Q, artist-disjoint CV: clip means by annotated quadrant")
    ax.legend(loc="lower right", fontsize=8)
    p = outdir / "cv_4q_clip_means.png"
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    # 2. VGMIDI: per-piece r histogram + three example curves.
    vcl, vpr = pooled["v_clips"], pooled["v_preds"]
    if vcl:
        fig, axes = plt.subplots(2, 2, figsize=(10, 6))
        for j, dim in enumerate(("valence", "arousal")):
            rs = [pearson(*measure_curve(c, p)[dim]) for c, p in zip(vcl, vpr)]
            axes[0, j].hist([r for r in rs if np.isfinite(r)], bins=20, range=(-1, 1), color="grey")
            axes[0, j].axvline(np.nanmean(rs), c="r", label=f"mean {np.nanmean(rs):.2f}")
            axes[0, j].set(title=f"VGMIDI piece-disjoint CV: per-piece r, {dim}", xlabel="r")
            axes[0, j].legend(fontsize=8)
        lengths = [c.meta["measures"] for c in vcl]
        c, pr = vcl[int(np.argsort(lengths)[len(lengths) // 2])], vpr[int(np.argsort(lengths)[len(lengths) // 2])]
        for j, dim in enumerate(("valence", "arousal")):
            pm, tm = measure_curve(c, pr)[dim]
            axes[1, j].plot(tm, label="listeners (mean)")
            axes[1, j].plot(pm, label="model (per-measure mean)")
            axes[1, j].set(title=f"{c.key[:32]}: {dim}", xlabel="measure", ylim=(-1, 1))
            axes[1, j].legend(fontsize=7)
        fig.tight_layout()
        p = outdir / "cv_vgmidi.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=ROOT / "cache" / "eval")
    ap.add_argument("--name", default=None, help="report name (default: from the config)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--figures", type=Path, default=None, help="write PNG figures here")
    ap.add_argument("--final-check", action="store_true",
                    help="train on the development groups and score the hold-out groups (once!)")
    ap.add_argument("--invariance", action="store_true",
                    help="with --final-check: also the quadrant agreement under each signal chain, "
                         "on the hold-out clips, and the speech values on music and under dialogue")
    ap.add_argument("--cv-probes", default="",
                    help="with CV: signal chains (e.g. dialogue6) whose quadrant agreement with the clean "
                         "clip each fold also measures on its test groups")
    ap.add_argument("--embedding", type=Path, default=DEFAULT_EMBEDDING,
                    help="the embedding network the heads are built on (default: the shipped one)")
    ap.add_argument("--speech-hold", type=float, default=0.5,
                    help="speech value at which the film-mix preset holds the estimate")
    for k, v in DEFAULT_CONFIG.items():
        ap.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = ap.parse_args(argv)
    config = {k: getattr(args, k) for k in DEFAULT_CONFIG}
    name = args.name or "_".join(f"{config[k]}" for k in ("model", "q4_target", "share_4q"))
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    clips = load_all(args.data, args.cache, config, embedding=args.embedding)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.final_check:
        res = final_check(clips, config, log=log)
        if args.invariance:
            res["invariance"], res["speech"] = final_invariance(clips, config, args, *res["_model"], log=log)
        res.pop("_model", None)
        (args.out / f"final_check_{name}.json").write_text(json.dumps(res, indent=1, default=str))
        print(json.dumps({k: v for k, v in res.items() if k != "config"}, indent=1, default=str))
        return 0
    probes = []
    if args.cv_probes:
        from realtime.embedding import EmbeddingNetwork
        from tools.embdata import load_4q_emb, select_pools

        net = EmbeddingNetwork(args.embedding)
        probes = [c for c in load_4q_emb(args.data, args.cache, net, variants=_names(args.cv_probes),
                                         groups=lambda g: not holdout_group(g, "4q"))]
        for c in probes:
            c.X = select_pools(c.X, _names(config["pools"]), net.n_embedding)
    rep = cross_validate(clips, config, n_folds=args.folds, probes=probes, log=log)
    if args.figures:
        figures(rep, args.figures)
    rep = {k: v for k, v in rep.items() if not k.startswith("_")}
    (args.out / f"cv_{name}.json").write_text(json.dumps(rep, indent=1))
    (args.out / f"cv_{name}.md").write_text(markdown_table(rep["summary"]) + "\n")
    print(markdown_table(rep["summary"]))
    print("residual_std", rep["residual_std"], "raw p95", rep["raw_output_p95"])
    if rep["probe_agreement"]:
        print("CV agreement with the clean clip:", json.dumps(rep["probe_agreement"]))
    return 0



def latency_ms(model_path, n: int = 2000) -> dict:
    """Single-row latency of ``MoodModel.predict`` (one intra-op thread): median and p99 in ms."""
    from realtime.model import MoodModel

    m = MoodModel(model_path)
    x = np.random.default_rng(0).standard_normal((1, m.n_inputs())).astype(np.float32)
    for _ in range(50):
        m.predict(x)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        m.predict(x)
        ts.append(time.perf_counter() - t0)
    ts = np.array(ts) * 1e3
    return {"median_ms": float(np.median(ts)), "p99_ms": float(np.percentile(ts, 99))}




def final_invariance(clips, config, args, model, scale, *, log=print):
    """Invariance and speech figures of the final-check ``model`` (with its output
    ``scale``) on the hold-out 4Q clips."""
    from realtime.embedding import EmbeddingNetwork

    net = EmbeddingNetwork(args.embedding)
    groups = {c.group for c in clips if c.source == "4q" and holdout_group(c.group, c.source)}
    pools = _names(config["pools"])
    plain = invariance(model, scale, args.data, args.cache, net, pools, groups, log=log)
    hold = invariance(model, scale, args.data, args.cache, net, pools, groups, variants=("dialogue6",),
                      speech_hold=args.speech_hold, log=log)
    plain["dialogue6_speech_hold"] = hold["dialogue6"]
    from tools.embdata import cached
    from tools.corpus import load_16k
    from tools.datasets import load_4q_labels

    sp = {"music": [], "dialogue6": [], "realvoice6": []}
    for r in load_4q_labels(args.data).itertuples(index=False):
        if str(r.artist) not in groups:
            continue
        for v in sp:
            path = str(Path(args.data) / "4q" / "audio" / f"{r.song}.ogg")
            sp[v].append(float(np.mean(cached(args.cache, net, "4q", "orig" if v == "music" else v, r.song,
                                              lambda: load_16k(path))[3])))
    speech = {k: {"mean": float(np.mean(v)), "p90": float(np.percentile(v, 90))} for k, v in sp.items()}
    log(f"  speech: {speech}")
    return plain, speech


# ------------------------------------------------------------------------- invariance
INVARIANCE_VARIANTS = ("mp3_32", "aac_64", "opus_32", "gain-30", "gain-24", "gain+6", "pink20", "babble20",
                       "reverb", "resample48", "tel", "dialogue6", "realvoice6")
INVARIANCE_TARGETS = {"tel": 0.75, "dialogue6": 0.85}


def held_mean(pred: np.ndarray, speech: np.ndarray | None, threshold: float | None) -> np.ndarray:
    """Clip-mean (valence, arousal) as the tracker reports it; with ``threshold`` the
    updates whose speech value reaches it hold the previous estimate (the film-mix rule)."""
    if threshold is None or speech is None:
        return pred.mean(axis=0)
    held = pred.copy()
    for i in range(len(held)):
        if speech[i] >= threshold:
            held[i] = held[i - 1] if i else pred[i]
    return held.mean(axis=0)


def invariance(model, scale, data, cache, network, pools, groups, *, variants=INVARIANCE_VARIANTS,
               speech_hold: float | None = None, log=print) -> dict:
    """Per transformation: quadrant agreement of each 4Q clip's mean with the clean run, and
    the mean |delta valence|, |delta arousal| of the clip means, on the clips of ``groups``."""
    from tools.datasets import load_4q_labels
    from tools.embdata import cached, select_pools
    from tools.corpus import load_16k

    df = load_4q_labels(data)
    rows = [r for r in df.itertuples(index=False) if str(r.artist) in groups]

    def clip_mean(variant, row):
        path = str(Path(data) / "4q" / "audio" / f"{row.song}.ogg")
        _, X, _, speech, _ = cached(cache, network, "4q", variant, row.song, lambda: load_16k(path))
        if len(X) == 0:
            return None
        pred = runtime_outputs(model.predict(select_pools(X, pools, network.n_embedding)), scale)
        return held_mean(pred, speech, speech_hold)

    clean = {r.song: clip_mean("orig", r) for r in rows}
    out = {"n_clips": len(rows)}
    for v in variants:
        agree, dv, da = [], [], []
        for r in rows:
            m, c = clip_mean(v, r), clean[r.song]
            if m is None or c is None:
                continue
            agree.append(quadrant_from_signs(*m) == quadrant_from_signs(*c))
            dv.append(abs(m[0] - c[0]))
            da.append(abs(m[1] - c[1]))
        out[v] = {"agreement": float(np.mean(agree)), "mean_abs_dv": float(np.mean(dv)),
                  "mean_abs_da": float(np.mean(da)), "n": len(agree)}
        log(f"  invariance {v}: agreement {out[v]['agreement']:.3f} |dV| {out[v]['mean_abs_dv']:.3f} "
            f"|dA| {out[v]['mean_abs_da']:.3f}")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
