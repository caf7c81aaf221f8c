"""Training code path on generated data (no dataset files): targets, design, fit, export, runtime load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from realtime.features import extract
from realtime.model import MoodModel
from tests.conftest import tone_mix
from tools.datasets import Clip, curve_targets, listener_mean, measure_of, q4_targets
from tools.moodcore import (ccc, design, fit_head, invariance_pairs, measure_curve, score_4q, score_segments,
                            score_vgmidi)


def test_measure_of_maps_time_to_measures():
    # 10 measures over 20 s: measure i covers [2i, 2i+2).
    t = np.array([0.0, 1.99, 2.0, 19.99, 20.0, 25.0, -1.0])
    assert measure_of(t, 20.0, 10).tolist() == [0, 0, 1, 9, -1, -1, -1]


def test_curve_targets_average_the_last_seconds_and_drop_the_tail():
    curve = np.arange(10, dtype=float)  # measure i has value i; 2 s per measure
    t = np.array([1.0, 4.0, 5.0, 19.5, 20.0, 21.0])
    y = curve_targets(t, curve, 20.0, span_s=0.0)
    assert y[:3].tolist() == [0.0, 2.0, 2.0] and y[3] == 9.0
    assert y[4] == 9.0 and np.isnan(y[5])  # t == duration ends inside the piece; after: no target
    y2 = curve_targets(np.array([4.0]), curve, 20.0, span_s=2.0, n_points=5)
    # points at 2, 2.5, 3, 3.5, 4 s -> measures 1, 1, 1, 1, 2
    assert y2[0] == pytest.approx((1 + 1 + 1 + 1 + 2) / 5)


def test_listener_mean_pads_and_averages():
    anns = [{"valence": [0.5, 0.5, 0.5], "arousal": [0, 1, 0]},
            {"valence": [-0.5, 0.5], "arousal": [0, 0, 1, 1]}]
    m = listener_mean(anns, 3)
    assert m["valence"].tolist() == [0.0, 0.5, 0.5]
    assert m["arousal"].tolist() == [0.0, 0.5, 0.5]


def test_q4_targets_modes():
    assert q4_targets(0.3, -0.1, "Q1", "tags") == (0.3, -0.1)
    assert q4_targets(0.3, -0.1, "Q1", "quadrant") == (0.5, 0.5)
    v, a = q4_targets(0.3, -0.1, "Q1", "blend")
    assert v == pytest.approx(0.4) and a == pytest.approx(0.2)


def test_ccc_is_one_for_identical_and_lower_for_biased():
    x = np.linspace(-1, 1, 20)
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(x, x + 0.5) < 0.9


def test_score_segments_scores_excerpts_like_clips():
    t = np.arange(1, 121) * 0.5  # a 60-s piece at 2 Hz: two 30-s excerpts
    y = np.where(t[:, None] <= 30, [0.5, -0.5], [-0.5, 0.5])  # Q4, then Q2
    y[t > 55] = np.nan  # the release tail has no target
    clip = Clip("vgmidi", "p", "p", "fluidr3", t, np.zeros((t.size, 1)), y)
    right = score_segments([clip], [np.where(t[:, None] <= 30, [0.2, -0.1], [-0.3, 0.4])])
    assert right == {"vg_seg_n": 2, "vg_seg_macro_f1": pytest.approx(0.5),  # 2 of 4 quadrants present, both right
                     "vg_seg_valence_sign_acc": 1.0, "vg_seg_arousal_sign_acc": 1.0}
    wrong = score_segments([clip], [np.tile([0.2, 0.4], (t.size, 1))])  # Q1 throughout
    assert wrong["vg_seg_valence_sign_acc"] == 0.5 and wrong["vg_seg_arousal_sign_acc"] == 0.5
    short = Clip("vgmidi", "q", "q", "fluidr3", t[:30], np.zeros((30, 1)), y[:30])  # 15 s: no excerpt
    assert score_segments([short], [np.zeros((30, 2))]) == {"vg_seg_n": 0}


def _synthetic_clips():
    clips = []
    for k, (gain, quad) in enumerate([(0.02, "Q3"), (0.1, "Q4"), (0.5, "Q1"), (0.3, "Q2")]):
        t, X, _ = extract(tone_mix(6.0, seed=k) * gain)
        sv = 1 if quad in ("Q1", "Q4") else -1
        sa = 1 if quad in ("Q1", "Q2") else -1
        y = np.tile([0.4 * sv, 0.4 * sa], (len(t), 1))
        clips.append(Clip("4q", f"artist{k}", f"song{k}", "orig", t, X, y,
                          {"quadrant": quad, "v_tag": 0.4 * sv, "a_tag": 0.4 * sa}))
    t, X, _ = extract(tone_mix(8.0, seed=9) * 0.2)
    curve_v, curve_a = np.linspace(-0.5, 0.5, 4), np.linspace(0.5, -0.5, 4)
    y = np.c_[curve_targets(t, curve_v, 7.0), curve_targets(t, curve_a, 7.0)]
    clips.append(Clip("vgmidi", "piece", "piece", "fluidr3", t, X, y,
                      {"duration_s": 7.0, "measures": 4, "valence": curve_v, "arousal": curve_a}))
    return clips


def test_design_weights_sources_by_share():
    clips = _synthetic_clips()
    X, Y, w = design(clips, stride=1, share_4q=0.75)
    n4 = sum(np.isfinite(c.y).all(axis=1).sum() for c in clips if c.source == "4q")
    assert X.shape[0] == Y.shape[0] == w.shape[0] and np.isfinite(Y).all()
    assert w[:n4].sum() / w.sum() == pytest.approx(0.75)


def _paired_clips(seed=0, n_clips=30, n=12, p=6):
    """Clips whose target is seen noisily in x[0] and x[1]; each has a copy ("aug1") whose
    x[1] is shifted: a chain that moves one of the two views."""
    rng = np.random.default_rng(seed)
    clips = []
    for k in range(n_clips):
        s = rng.normal(size=n)
        X = rng.normal(size=(n, p))
        X[:, :2] = s[:, None] + 0.3 * rng.normal(size=(n, 2))  # two noisy views of the signal
        y = np.c_[s, -s]
        t = np.arange(n) * 0.5
        meta = {"quadrant": "Q1"}
        clips.append(Clip("4q", f"a{k}", f"s{k}", "orig", t, X.astype(np.float32), y, meta))
        shifted = X.copy()
        shifted[:, 1] += rng.normal(scale=2.0, size=n)
        clips.append(Clip("4q", f"a{k}", f"s{k}", "aug1", t[1:], shifted[1:].astype(np.float32), y[1:],
                          {**meta, "pair_only": True}))
    return clips


def test_invariance_penalty_is_plain_ridge_at_zero_and_removes_the_nuisance():
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    clips = _paired_clips()
    D, u = invariance_pairs(clips, ["aug1"])
    assert D.shape == (30 * 11, 6) and u.sum() == pytest.approx(30)  # matched by update time, 1 per clip
    config = {"model": "ridge5", "stride": 1, "share_4q": 1.0, "soundfonts": "fluidr3", "seed": 0,
              "inv_pairs": "aug1", "inv_weight": 0.0}
    plain, X, Y, w = fit_head(clips, config)
    assert len(X) == 30 * 12  # pair-only clips are not training rows
    ref = Ridge(alpha=5.0).fit(StandardScaler().fit_transform(X), Y, sample_weight=w)
    np.testing.assert_allclose(plain.steps[-1][1].coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    tiny, *_ = fit_head(clips, {**config, "inv_weight": 1e-9})  # the penalty's own solver, ~no penalty
    np.testing.assert_allclose(tiny.predict(X), plain.predict(X), atol=1e-4)
    strong, *_ = fit_head(clips, {**config, "inv_weight": 100.0})
    moved = lambda m: np.abs(m.predict(X + np.eye(6)[1]) - m.predict(X)).mean()  # noqa: E731
    assert moved(plain) > 0.1 and moved(strong) < 0.02 * moved(plain)
    # The signal is still learnt.
    assert np.corrcoef(strong.predict(X)[:, 0], Y[:, 0])[0, 1] > 0.9


def test_pair_variants_weigh_their_clips():
    from tools.moodcore import pair_variants

    assert pair_variants("aug1, rev1*3,,dlg1*0.5") == {"aug1": 1.0, "rev1": 3.0, "dlg1": 0.5}
    clips = _paired_clips()
    for c in clips[3::4]:  # every other pair clip becomes "aug2"
        c.variant = "aug2"
    D, u = invariance_pairs(clips, pair_variants("aug1,aug2*3"))
    D1, u1 = invariance_pairs(clips, ["aug1", "aug2"])
    np.testing.assert_array_equal(D, D1)
    assert u.sum() == pytest.approx(15 + 3 * 15) and u1.sum() == pytest.approx(30)


def test_train_export_and_runtime_load(tmp_path):
    from tools.train import train_export

    clips = _synthetic_clips()
    config = {"model": "mlp_small", "q4_target": "tags", "share_4q": 0.5, "stride": 1, "span_s": 2.0,
              "soundfonts": "fluidr3", "q4_variants": "orig", "seed": 0}
    model, path = train_export(clips, config, tmp_path / "m.onnx", name="tiny-train", version="t")
    m = MoodModel(path)
    assert m.info.name == "tiny-train"
    assert json.loads(m.metadata["config"])["model"] == "mlp_small"
    assert "Panda" in m.metadata["training_data"] and m.metadata["update_hz"] == "2"
    assert min(m.info.output_scale) > 0 and min(m.info.residual_std) > 0
    X = np.vstack([c.X for c in clips])
    np.testing.assert_allclose(m.predict(X), model.predict(X), atol=1e-4)
    # Scores run on the synthetic clips.
    preds = [m.predict(c.X) for c in clips]
    s4 = score_4q(clips[:4], preds[:4])
    assert 0 <= s4["q4_macro_f1"] <= 1
    sv = score_vgmidi(clips[4:], preds[4:])
    assert sv["vg_n"] == 1
    pm, tm = measure_curve(clips[4], preds[4])["valence"]
    assert len(pm) == len(tm) <= 4


def test_embedding_head_train_export_and_pipeline(tmp_path):
    """A tiny head on the shipped embedding network: trained, exported beside a copy of the
    network, loaded by the runtime, and run through the real pipeline with speech and tags."""
    import shutil

    from realtime.embedding import TONAL_WIDTH, EmbeddingNetwork, extract as extract_emb
    from realtime.pipeline import Pipeline
    from tools.embdata import EXTRACT_OPTIONS, select_pools
    from tools.train import train_export

    shipped = MoodModel().network.path
    shutil.copy(shipped, tmp_path / "embedding.onnx")
    net = EmbeddingNetwork(tmp_path / "embedding.onnx")
    clips = []
    for k, (gain, quad) in enumerate([(0.02, "Q3"), (0.1, "Q4"), (0.5, "Q1"), (0.3, "Q2")]):
        y = tone_mix(6.0, seed=k, sr=16000) * gain
        t, X, *_ = extract_emb(y, net, **EXTRACT_OPTIONS)
        sv = 1 if quad in ("Q1", "Q4") else -1
        sa = 1 if quad in ("Q1", "Q2") else -1
        clips.append(Clip("4q", f"artist{k}", f"song{k}", "orig", t,
                          select_pools(X, ("ctx_mean", "short_rel", "tonal"), net.n_embedding),
                          np.tile([0.4 * sv, 0.4 * sa], (len(t), 1)),
                          {"quadrant": quad, "v_tag": 0.4 * sv, "a_tag": 0.4 * sa}))
    config = {"features": "emb", "pools": "ctx_mean,short_rel,tonal", "model": "ridge30", "q4_target": "tags",
              "share_4q": 1.0, "stride": 1, "span_s": 2.0, "soundfonts": "", "q4_variants": "orig", "seed": 0}
    model, path = train_export(clips, config, tmp_path / "m.onnx", name="tiny-emb", version="t",
                               embedding=tmp_path / "embedding.onnx")
    m = MoodModel(path)
    assert m.uses_embedding and m.info.name == "tiny-emb" and m.n_inputs() == 2 * net.n_embedding + TONAL_WIDTH
    X = np.vstack([c.X for c in clips])
    np.testing.assert_allclose(m.predict(X), model.predict(X), atol=1e-4)
    got = []
    p = Pipeline(m, update_hz=2.0, sinks=[type("S", (), {"emit": lambda self, u: got.append(u)})()])
    p.push(tone_mix(4.0, seed=3, sr=16000) * 0.3, sample_rate=16000)
    p.finish()
    assert [u.t for u in got] == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    assert all(0.0 <= u.speech <= 1.0 for u in got)
    tagged = [u for u in got if u.tags]
    assert tagged and "piano" in [name for name, _ in tagged[0].tags["instruments"]]


def _quadrant_clips(seed=0, n_clips=40, n=10, p=6):
    """4Q-like clips: valence seen in x[0] and x[1], arousal in x[2]; each clip has a copy
    ("aug1", pair only) whose x[1] is shifted: a chain that moves one of the valence views."""
    rng = np.random.default_rng(seed)
    names = {(1, 1): "Q1", (-1, 1): "Q2", (-1, -1): "Q3", (1, -1): "Q4"}
    clips = []
    for k in range(n_clips):
        sv, sa = (1 if k % 2 else -1), (1 if (k // 2) % 2 else -1)
        X = rng.normal(size=(n, p))
        X[:, :2] = sv * 0.8 + 0.6 * rng.normal(size=(n, 2))
        X[:, 2] = sa * 0.8 + 0.6 * rng.normal(size=n)
        t = np.arange(n) * 0.5
        meta = {"quadrant": names[(sv, sa)]}
        y = np.tile([0.4 * sv, 0.4 * sa], (n, 1))
        clips.append(Clip("4q", f"a{k}", f"s{k}", "orig", t, X.astype(np.float32), y, meta))
        shifted = X.copy()
        shifted[:, 1] += rng.normal(scale=2.0, size=n)
        clips.append(Clip("4q", f"a{k}", f"s{k}", "aug1", t, shifted.astype(np.float32), y,
                          {**meta, "pair_only": True}))
    return clips


def test_quadrant_head_is_logistic_regression_at_zero_and_removes_the_nuisance():
    from sklearn.linear_model import LogisticRegression

    from tools.moodcore import QUADRANT_SIGN_MATRIX

    clips = _quadrant_clips()
    config = {"model": "quad0.1", "stride": 1, "share_4q": 1.0, "soundfonts": "fluidr3", "seed": 0,
              "inv_pairs": "aug1", "inv_weight": 0.0}
    plain, X, Y, w = fit_head(clips, config)
    assert len(X) == 40 * 10 and set(map(tuple, Y)) == {(1, 1), (-1, 1), (-1, -1), (1, -1)}
    Xs = (X - np.average(X, axis=0, weights=w)) / np.sqrt(np.average((X - np.average(X, axis=0, weights=w)) ** 2,
                                                                      axis=0, weights=w))
    labels = np.array([int(c.meta["quadrant"][1]) for c in clips if c.variant == "orig" for _ in range(10)])
    ref = LogisticRegression(C=0.1, max_iter=5000, tol=1e-8).fit(Xs, labels, sample_weight=w)
    np.testing.assert_allclose(plain.predict_proba(X), ref.predict_proba(Xs), atol=1e-3)
    # valence, arousal = quadrant probabilities times the quadrants' signs, each in [-1, 1]
    np.testing.assert_allclose(plain.predict(X), ref.predict_proba(Xs) @ QUADRANT_SIGN_MATRIX, atol=2e-3)
    assert np.abs(plain.predict(X)).max() <= 1.0
    strong, *_ = fit_head(clips, {**config, "inv_weight": 1000.0})
    moved = lambda m: np.abs(m.logits(X + np.eye(6)[1]) - m.logits(X)).mean()  # noqa: E731
    assert moved(plain) > 0.1 and moved(strong) < 0.05 * moved(plain)
    # Still right (clip means, as the tracker is scored), from the views the chain leaves alone.
    clip_q = np.argmax(strong.predict_proba(X).reshape(40, 10, 4).mean(axis=1), axis=1) + 1
    assert np.mean(clip_q == labels[::10]) >= 0.95


def test_quadrant_head_exports_and_runs_in_the_runtime(tmp_path):
    from tools.train import train_export

    clips = _synthetic_clips()
    config = {"model": "quad0.01", "q4_target": "blend", "share_4q": 0.8, "stride": 1, "span_s": 2.0,
              "soundfonts": "fluidr3", "q4_variants": "orig", "seed": 0, "inv_pairs": "", "inv_weight": 0.0}
    model, path = train_export(clips, config, tmp_path / "q.onnx", name="tiny-quad", version="t")
    m = MoodModel(path)
    X = np.vstack([c.X for c in clips])
    np.testing.assert_allclose(m.predict(X), model.predict(X), atol=1e-4)
    # The four synthetic 4Q clips are told apart by their level, and read as their quadrants.
    quads = [int(np.argmax(model.predict_proba(c.X).mean(axis=0))) + 1 for c in clips[:4]]
    assert quads == [int(c.meta["quadrant"][1]) for c in clips[:4]]


def test_quadrant_head_with_a_network_blends_and_exports(tmp_path):
    from tools.moodcore import QUADRANT_SIGN_MATRIX, QuadrantHead
    from tools.train import train_export

    clips = _synthetic_clips()
    config = {"model": "quad0.01", "q4_target": "blend", "share_4q": 0.8, "stride": 1, "span_s": 2.0,
              "soundfonts": "fluidr3", "q4_variants": "orig", "seed": 0, "inv_pairs": "", "inv_weight": 0.0,
              "mlp_hidden": 8, "mlp_alpha": 1.0, "mlp_blend": 0.5}
    model, path = train_export(clips, config, tmp_path / "q.onnx", name="tiny-quad-mlp", version="t")
    X = np.vstack([c.X for c in clips])
    linear = QuadrantHead(0.01)
    linear.__dict__.update({k: v for k, v in model.__dict__.items() if k not in ("net_", "blend", "hidden")})
    linear.net_ = None
    p_lin = linear.predict_proba(X)
    (W1, b1), (W2, b2) = model.net_
    z = np.maximum(((X - model.mean_) / model.scale_) @ W1 + b1, 0) @ W2 + b2
    p_net = np.exp(z - z.max(axis=1, keepdims=True))
    p_net /= p_net.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X), 0.5 * p_lin + 0.5 * p_net, atol=1e-9)
    assert np.abs(p_lin - p_net).max() > 1e-3  # two different models were blended
    np.testing.assert_allclose(model.predict(X), model.predict_proba(X) @ QUADRANT_SIGN_MATRIX, atol=1e-12)
    np.testing.assert_allclose(MoodModel(path).predict(X), model.predict(X), atol=1e-4)


def test_score_analyze_reads_what_analyze_writes(tmp_path):
    """tools/score_analyze.py scores analyze's summary (4Q clip means) and timelines (VGMIDI)."""
    import csv
    from types import SimpleNamespace

    from tools import score_analyze

    out = tmp_path / "out"
    out.mkdir()
    q4 = [(tmp_path / f"{song}.ogg", SimpleNamespace(artist="a", song=song, quadrant=q, v=v, a=a))
          for song, q, v, a in (("s1", "Q1", 0.5, 0.5), ("s2", "Q2", -0.5, 0.4), ("s3", "Q3", -0.3, -0.2),
                                ("s4", "Q4", 0.2, -0.6))]
    means = {"s1": (0.4, 0.3), "s2": (-0.2, 0.6), "s3": (-0.5, -0.1), "s4": (-0.1, -0.5)}  # s4 misread as Q3
    t = np.arange(1.0, 40.0, 0.5)
    curve = np.sin(np.linspace(0, 3, 10))
    info = {"duration_s": 40.0, "measures": 10, "valence": curve, "arousal": -curve}
    idx = measure_of(t, 40.0, 10)
    rows = [("s1.ogg", "s1.ogg.csv"), ("s2.ogg", "s2.ogg.csv"), ("s3.ogg", "s3.ogg.csv"), ("s4.ogg", "s4.ogg.csv"),
            ("p.flac", "p.flac.csv")]
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "timeline", "mean_valence", "mean_arousal", "error"])
        for name, tl in rows:
            v, a = means.get(name.split(".")[0], (0.0, 0.0))
            w.writerow([f"/x/{name}", tl, v, a, ""])
    with open(out / "p.flac.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "valence", "arousal", "quadrant"])
        for ti, m in zip(t, idx):
            w.writerow([ti, 0.5 * curve[m], -0.2 * curve[m], "Q1"])  # the listeners' curve, scaled
    res = score_analyze.score(q4, [(tmp_path / "p.flac", "p", info)], out)
    assert res["q4_n"] == 4 and res["q4_quadrant_acc"] == pytest.approx(0.75)
    assert res["q4_valence_sign_acc"] == pytest.approx(0.75) and res["q4_arousal_sign_acc"] == 1.0
    assert res["vg_v_piece_r"] == pytest.approx(1.0) and res["vg_a_piece_r"] == pytest.approx(1.0)
    assert res["vg_v_piece_ccc"] < 1.0


def test_train_refuses_a_development_only_model_in_models(capsys):
    from tools import train

    with pytest.raises(SystemExit) as exc:
        train.main(["--development-only", "--out", str(train.ROOT / "models" / "mood.onnx"), "--cv-folds", "0"])
    assert exc.value.code == 2
    assert "--development-only" in capsys.readouterr().err


def test_train_development_only_refuses_a_folder_with_other_networks(tmp_path, capsys):
    from tools import train

    (tmp_path / "embedding.onnx").write_bytes(b"another network")
    with pytest.raises(SystemExit) as exc:
        train.main(["--development-only", "--out", str(tmp_path / "mood.onnx"), "--cv-folds", "0"])
    assert exc.value.code == 2
    assert "embedding.onnx exists" in capsys.readouterr().err
    assert (tmp_path / "embedding.onnx").read_bytes() == b"another network"
