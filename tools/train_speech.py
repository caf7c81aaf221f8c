"""Refit the embedding network's speech output on recorded human voices (and the synthetic ones).

The student (``tools/train_embedding.py``) learnt its ``speech`` output from espeak-ng and
festival only, and a recorded voice hardly moves it. This keeps the network's trunk, its
``embedding`` and ``tags`` outputs bit for bit, and adds a second speech layer, a logistic
regression on the network's own hidden layer (``TAP``); ``speech`` becomes the larger of the
two (the distilled layer knows the synthetic voices and never fires on music; the new one
also hears people). The new layer is trained on:

- music (4Q development clips, VGMIDI development renders) through a random signal chain:
  speech 0 (sung vocals included: a singer is not dialogue);
- the same music with dialogue laid over it, -3 to 12 dB above the music, from the synthetic
  training voices or from recorded training voices (:mod:`tools.voices`), then a random
  chain: the share of each 3-s patch where someone speaks;
- dialogue alone over faint noise.

Patches every ~1 s, full ones; with ``--stream-starts`` also the stream's first patches,
which the runtime pads with zeros (the log-mel of silence) before its first 3 s (tried for
v4.0, not shipped: see the model card).

The figures (written to ``--report``) are on the hold-out groups (4Q artists, VGMIDI pieces
fixed by :func:`tools.datasets.holdout_group`) with voices kept out of training: the
synthetic evaluation voices, the recorded evaluation voices, and alsa-utils' words.

    python tools/train_speech.py --data ../shared/data --cache cache --out models/embedding.onnx
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: small matrices, busy cores

import argparse
import hashlib
import json
import sys
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from realtime.embedding import FRONT_END, LogMelFrontEnd, patch_stack  # noqa: E402
from realtime.outputs import atomic_write  # noqa: E402
from tools import augment, voices  # noqa: E402
from tools.corpus import PATCH, SR, load_16k  # noqa: E402

TAP = "/hidden/hidden.1/Relu_output_0"  # the student's 256-value hidden layer (after ReLU)
HOP = 62  # frames between training patches (~1 s, the runtime's patch rate)
LEVEL_DB = (-3.0, 12.0)  # dialogue over the music, speech RMS vs music RMS
CONDITIONS = ("music", "synthetic", "recorded")
#: Weight of the patches where nobody speaks: a false "speech" on music costs the mood
#: estimate (it discounts the music), so the layer is fitted to say it rarely (hold-out:
#: music mean 0.13 at weight 1, 0.05 at 4; recorded-voice AUC 0.972 vs 0.981).
SILENT_WEIGHT = 4.0


DISTILLED = "/speech/distilled"  # the distilled speech layer's output in a grafted network


def tapped_session(model_bytes: bytes):
    """An onnxruntime session of the network with ``TAP`` and (in a grafted network)
    ``DISTILLED`` as extra outputs; :func:`distilled_name` says which name gives the latter."""
    import onnx
    import onnxruntime as ort

    m = onnx.load_from_string(model_bytes)
    m.graph.output.append(onnx.helper.make_tensor_value_info(TAP, onnx.TensorProto.FLOAT, None))
    if distilled_name(model_bytes) == DISTILLED:
        m.graph.output.append(onnx.helper.make_tensor_value_info(DISTILLED, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def distilled_name(model_bytes: bytes) -> str:
    """The output that gives the distilled speech layer: ``speech`` until grafted."""
    import onnx

    m = onnx.load_from_string(model_bytes)
    return DISTILLED if any(DISTILLED in n.output for n in m.graph.node) else "speech"


def patch_speech(active: np.ndarray | None, ends: np.ndarray) -> np.ndarray:
    """Share of each patch (ending at frame ``ends``) where someone speaks."""
    if active is None:
        return np.zeros(len(ends), np.float32)
    hop = FRONT_END["hop_length"]
    n = int(ends.max()) if len(ends) else 0
    a = np.zeros(n * hop, np.float32)
    m = min(a.size, active.size)
    a[:m] = active[:m]
    frame = a.reshape(-1, hop).mean(axis=1)
    return np.array([frame[max(e - PATCH, 0):e].mean() for e in ends], np.float32)


_STATE: dict = {}


def _init(model_bytes: bytes, cache: str, stream_starts: bool = False):
    _STATE["stream_starts"] = stream_starts
    _STATE["session"] = tapped_session(model_bytes)
    _STATE["distilled"] = distilled_name(model_bytes)
    _STATE["banks"] = {
        "synthetic": {s: augment.load_speech_bank(Path(cache) / "speech", s) for s in ("train", "eval")},
        "recorded": {s: voices.load_real_bank(Path(cache), s) for s in ("train", "eval")},
    }
    _STATE["banks"]["alsa"] = {"eval": voices.alsa_words()}


def _example(job):
    """(hidden (n, 256), distilled speech (n,), target (n,), condition, split) of one mixture."""
    path, condition, split, seed = job
    rng = np.random.default_rng(seed)
    banks = _STATE["banks"]
    if path is None:  # dialogue alone over faint noise
        bank = banks[condition]["train"]
        n = 20 * SR
        track, active = augment.dialogue_track(n, rng, SR, bank, pause=(0.1, 1.5))
        y = track * 0.05 + augment.coloured_noise(n, rng, "pink") * 0.05 * 10 ** (-rng.uniform(20, 45) / 20)
        if rng.random() < 0.5:
            y = augment.reverb(y.astype(np.float32), rng, SR)
        y = augment.gain(y.astype(np.float32), rng, SR)
    else:
        y = load_16k(path)
        active = None
        if split == "train":
            if condition != "music":
                level = rng.uniform(*LEVEL_DB)
                y, active = augment.overlay_dialogue(y, rng, SR, banks[condition]["train"], level_db=level)
            y = augment.random_chain(y, rng, SR, banks["synthetic"]["train"], p_dialogue=0.0)[0]
        elif condition != "music":  # evaluation: held-out voices 6 dB over the clean music
            y, active = augment.overlay_dialogue(y, rng, SR, banks[condition]["eval"], level_db=6.0)
    front = LogMelFrontEnd()
    logmel, _ = front.process(np.asarray(y, np.float32))
    # Full patches every ~1 s (and, with --stream-starts, the stream's zero-padded first ones)
    starts = ([e for e in (front.frames_by(k * SR) for k in range(1, 4)) if 0 < e < PATCH]
              if _STATE["stream_starts"] else [])
    ends = np.array([e for e in starts if e <= logmel.shape[0]] + list(range(PATCH, logmel.shape[0] + 1, HOP)), int)
    if not len(ends):
        return None
    x = patch_stack(logmel, ends, PATCH)
    speech, hidden = _STATE["session"].run([_STATE["distilled"], TAP], {"melspec": x})
    return hidden.astype(np.float32), speech.reshape(-1), patch_speech(active, ends), condition, split


def jobs(data: Path, cache: Path, seed: int) -> list[tuple]:
    """Every mixture: (audio path or None, condition, split, seed)."""
    from tools.datasets import holdout_group, load_4q_labels, load_vgmidi_annotations
    from tools.render_vgmidi import rendered_path

    clips = []
    for row in load_4q_labels(data).itertuples(index=False):
        clips.append((str(Path(data) / "4q" / "audio" / f"{row.song}.ogg"),
                      "eval" if holdout_group(str(row.artist), "4q") else "train"))
    for i, pid in enumerate(sorted(load_vgmidi_annotations(data))):
        font = ("fluidr3", "musescore")[i % 2]
        wav = rendered_path(cache, font, pid)
        if wav.is_file():
            clips.append((str(wav), "eval" if holdout_group(pid, "vgmidi") else "train"))
    out = []
    for path, split in clips:
        conds = CONDITIONS + (("alsa",) if split == "eval" else ())
        for c in conds:
            s = int(hashlib.sha1(f"{seed}|{path}|{c}".encode()).hexdigest()[:8], 16)
            out.append((path, c, split, s))
    out += [(None, c, "train", seed * 1000 + k) for k in range(150) for c in ("synthetic", "recorded")]
    return out


def fit(H: np.ndarray, target: np.ndarray, *, C: float, seed: int):
    """Logistic regression of the soft target (each patch twice: speech with weight p, music
    with 1 - p; patches with nobody speaking ``SILENT_WEIGHT`` times) on standardised ``H``;
    returns (W (256,), b) on the raw hidden values."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = H.mean(axis=0), H.std(axis=0) + 1e-3
    Z = (H - mu) / sd
    X = np.concatenate([Z, Z])
    y = np.r_[np.ones(len(Z)), np.zeros(len(Z))]
    k = np.where(target > 0, 1.0, SILENT_WEIGHT)
    w = np.r_[target * k, (1.0 - target) * k] + 1e-6
    lr = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(X, y, sample_weight=w)
    W = lr.coef_[0] / sd
    return W.astype(np.float32), float(lr.intercept_[0] - np.dot(lr.coef_[0], mu / sd))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def figures(rows: list, W: np.ndarray | None, b: float) -> dict:
    """Hold-out figures of the distilled speech layer (``W`` None) or of the grafted output."""
    from sklearn.metrics import roc_auc_score

    out = {}
    by = {}
    for hidden, old, target, cond, split in rows:
        if split != "eval":
            continue
        p = old if W is None else np.maximum(old, sigmoid(hidden @ W + b))
        by.setdefault(cond, []).append((p, target))
    music = np.concatenate([p for p, _ in by["music"]])
    out["music_mean"] = float(music.mean())
    out["music_p95"] = float(np.quantile(music, 0.95))
    for cond in ("synthetic", "recorded", "alsa"):
        p = np.concatenate([p for p, _ in by[cond]])
        t = np.concatenate([t for _, t in by[cond]])
        out[f"{cond}_mean"] = float(p.mean())
        out[f"{cond}_speaking_share"] = float(t.mean())
        sel = t >= 0.5
        out[f"{cond}_auc"] = float(roc_auc_score(np.r_[np.zeros(music.size), np.ones(sel.sum())],
                                                 np.r_[music, p[sel]]))
        out[f"{cond}_corr"] = float(np.corrcoef(p, t)[0, 1])
    return {k: round(v, 4) for k, v in out.items()}


def graft(model_bytes: bytes, W: np.ndarray, b: float, meta: dict) -> bytes:
    """The network with a second speech layer, ``sigmoid(TAP @ W + b)`` (weights
    ``speech_recorded.*``), its ``speech`` output the larger of the distilled layer's and this
    one's. Grafting onto a grafted network replaces the second layer's weights."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load_from_string(model_bytes)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    weights = {"speech_recorded.weight": W.reshape(1, -1).astype(np.float32),
               "speech_recorded.bias": np.array([b], np.float32)}
    if "speech_recorded.weight" in inits:
        for name, value in weights.items():
            inits[name].CopyFrom(numpy_helper.from_array(value, name))
    else:
        gemm = next(n for n in g.node if n.op_type == "Gemm" and n.input[1] == "speech.weight")
        if gemm.input[0] != TAP:
            raise RuntimeError(f"speech layer reads {gemm.input[0]}, not {TAP}")
        sig = next(n for n in g.node if n.op_type == "Sigmoid" and n.output[0] == "speech")
        sig.output[0] = DISTILLED
        g.initializer.extend(numpy_helper.from_array(v, k) for k, v in weights.items())
        g.node.extend([
            helper.make_node("Gemm", [TAP, "speech_recorded.weight", "speech_recorded.bias"],
                             ["/speech_recorded/logit"], name="speech_recorded_gemm", transB=1),
            helper.make_node("Sigmoid", ["/speech_recorded/logit"], ["/speech/recorded"],
                             name="speech_recorded_sigmoid"),
            helper.make_node("Max", [DISTILLED, "/speech/recorded"], ["speech"], name="speech_max"),
        ])
    props = {p.key: p.value for p in m.metadata_props}
    props["speech_head"] = json.dumps(meta, sort_keys=True)
    del m.metadata_props[:]
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(m)
    return m.SerializeToString()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / "cache")
    ap.add_argument("--embedding", type=Path, default=ROOT / "models" / "embedding.onnx")
    ap.add_argument("--out", type=Path, default=None, help="write the refitted network here")
    ap.add_argument("--report", type=Path, default=ROOT / "models" / "eval" / "speech_report.json")
    ap.add_argument("--C", type=float, nargs="+", default=[0.003, 0.03, 0.3])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stream-starts", action="store_true",
                    help="also train on the stream's first, zero-padded patches (music starting: no speech)")
    args = ap.parse_args(argv)

    model_bytes = args.embedding.read_bytes()
    for split in ("train", "eval"):  # built once, before the workers share them
        augment.load_speech_bank(args.cache / "speech", split)
        voices.load_real_bank(args.cache, split)
    todo = jobs(args.data, args.cache, args.seed)
    with get_context("spawn").Pool(args.jobs, _init, (model_bytes, str(args.cache), args.stream_starts)) as pool:
        rows = [r for r in pool.imap(_example, todo, chunksize=4) if r is not None]
    train = [r for r in rows if r[4] == "train"]
    H = np.concatenate([r[0] for r in train])
    T = np.concatenate([r[2] for r in train])
    # C chosen on a fifth of the training mixtures (by clip), the figures on the hold-out
    val = np.concatenate([np.full(len(r[0]), i % 5 == 0) for i, r in enumerate(train)])
    scores = {}
    for C in args.C:
        W, b = fit(H[~val], T[~val], C=C, seed=args.seed)
        p = np.clip(sigmoid(H[val] @ W + b), 1e-6, 1 - 1e-6)
        scores[C] = float(-np.mean(T[val] * np.log(p) + (1 - T[val]) * np.log(1 - p)))
        print(f"C {C}: validation BCE {scores[C]:.4f}", file=sys.stderr, flush=True)
    C = min(scores, key=scores.get)  # on the new layer alone
    W, b = fit(H, T, C=C, seed=args.seed)
    report = {"C": C, "validation_bce": scores, "n_train_patches": int(len(H)),
              "distilled_layer": figures(rows, None, 0.0), "shipped": figures(rows, W, b),
              "recorded_layer_alone": figures([(h, np.zeros_like(o), *r) for h, o, *r in rows], W, b)}
    print(json.dumps(report, indent=1))
    args.report.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.report, (json.dumps(report, indent=1) + "\n").encode())
    if args.out:
        meta = {"trained_by": "tools/train_speech.py", "C": C, "seed": args.seed, "silent_weight": SILENT_WEIGHT,
                "voices": "espeak-ng, festival, asterisk-core-sounds (Allison, Carlo), klettres-data"}
        atomic_write(args.out, graft(model_bytes, W, b, meta))
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
