"""Distil the embedding network (``models/embedding.onnx``) from musicnn's teachers.

The student sees each item of the corpus (``tools/corpus.py``) as it reaches a real input —
through a random signal chain (``tools/augment.py``: dialogue over the music, EQ, band
limits, rooms, noise, level, codecs) — and learns to give what the teachers give for the
*clean* item: the MSD network's penultimate layer (standardised), the MSD and MTT tag
probabilities. So invariance is learned, not hoped for. A speech output learns where
dialogue lines were laid over the music (and pure speech), never sung vocals.

    python tools/corpus.py --data ../shared/data          # once: audio + teacher targets
    python tools/train_embedding.py --out models/embedding.onnx

Fixed seeds; ``--minutes`` bounds the training time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: small matrices, busy cores

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from realtime.embedding import EMBEDDING_VERSION, FRONT_END, LogMelFrontEnd, patch_stack  # noqa: E402
from realtime.outputs import atomic_write  # noqa: E402
from tools import augment  # noqa: E402
from tools.corpus import PATCH, SR  # noqa: E402


def _examples(args):
    """Patches of one item through one signal chain (variant 0: clean)."""
    name, variant, cache, seed = args
    y = np.load(Path(cache) / "distill" / "audio" / f"{name}.npy").astype(np.float32) / 32767.0
    t = np.load(Path(cache) / "distill" / "teacher" / f"{name}.npz")
    ends = t["ends"]
    if len(ends) == 0:
        return None
    active = None
    if variant > 0:
        rng = np.random.default_rng([seed, variant, int.from_bytes(name.encode()[-6:], "little")])
        y, active, _ = augment.random_chain(y, rng, SR, _BANK)
    logmel, _ = LogMelFrontEnd().process(y)
    ends = ends[ends <= logmel.shape[0]]
    x = patch_stack(logmel, ends, PATCH).astype(np.float16)
    hop = FRONT_END["hop_length"]
    if active is None:
        speech = np.zeros(len(ends), np.float32)
    else:
        frame_active = active[: logmel.shape[0] * hop].reshape(-1, hop).mean(axis=1)[: logmel.shape[0]]
        speech = np.array([frame_active[max(e - PATCH, 0):e].mean() for e in ends], np.float32)
    return (x, t["msd_pen"][: len(ends)], t["tags"][: len(ends)], speech, np.ones(len(ends), bool),
            t["mtt_pen"][: len(ends)])


def _speech_only(args):
    """Patches of dialogue alone (over faint room noise): speech 1, no embedding target."""
    k, seed = args
    rng = np.random.default_rng([seed, 99, k])
    n = 30 * SR
    track, active = augment.dialogue_track(n, rng, SR, _BANK, pause=(0.1, 0.8))
    y = track * 0.05 + augment.coloured_noise(n, rng, "pink") * 0.05 * 10 ** (-rng.uniform(25, 45) / 20)
    if rng.random() < 0.5:
        y = augment.reverb(y, rng, SR)
    y = augment.gain(y, rng, SR)
    logmel, _ = LogMelFrontEnd().process(y.astype(np.float32))
    ends = np.arange(PATCH, logmel.shape[0] + 1, PATCH // 2)
    hop = FRONT_END["hop_length"]
    fa = active[: logmel.shape[0] * hop].reshape(-1, hop).mean(axis=1)
    speech = np.array([fa[e - PATCH:e].mean() for e in ends], np.float32)
    x = patch_stack(logmel, ends, PATCH).astype(np.float16)
    return (x, np.zeros((len(ends), 200), np.float32), np.zeros((len(ends), 100), np.float32), speech,
            np.zeros(len(ends), bool), np.zeros((len(ends), 200), np.float32))


_BANK = None


def _init(cache):
    global _BANK
    _BANK = augment.load_speech_bank(Path(cache) / "speech", "train")


def build_set(cache: Path, names: list[str], variants: int, seed: int, jobs: int, n_speech: int):
    from multiprocessing import get_context

    tasks = [(n, v, str(cache), seed) for v in range(variants) for n in names]
    parts = []
    t0 = time.time()
    with get_context("spawn").Pool(jobs, initializer=_init, initargs=(str(cache),)) as pool:
        for i, r in enumerate(pool.imap_unordered(_examples, tasks, chunksize=4)):
            if r is not None:
                parts.append(r)
            if (i + 1) % 200 == 0:
                print(f"  examples {i + 1}/{len(tasks)} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
        parts += [r for r in pool.imap_unordered(_speech_only, [(k, seed) for k in range(n_speech)])]
    return [np.concatenate([p[i] for p in parts]) for i in range(6)]


SET_KEYS = ("x", "emb", "tags", "speech", "has_emb", "aux")


def training_set(path: Path | None, build, *, key: str):
    """The training set from ``path`` (an .npz an earlier run wrote for the same ``key``:
    items, chains and seed), or ``build()`` and, with ``path``, stored there (whole or not
    at all) for the next run. A set built for another key is built again, not reused."""
    if path is not None and path.is_file():
        with np.load(path) as f:
            if "key" in f and str(f["key"]) == key:
                return [f[k] for k in SET_KEYS]
        print(f"{path} holds a set of other items, chains or seed: building it again", file=sys.stderr)
    data = build()
    if path is not None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, key=np.array(key), **dict(zip(SET_KEYS, data)))
        tmp.replace(path)
    return data


def train(data, *, minutes: float, seed: int, batch: int = 128, lr: float = 2e-3,
          widths=(128, 128, 192, 256), aux_weight: float = 0.0, threads: int = 1, embed_mtt: bool = False):
    """Distil a :class:`tools.student.Student` of conv ``widths`` for ``minutes`` of wall
    time on ``threads`` threads; ``aux_weight`` > 0 adds the MTT teacher's penultimate
    layer as a training-only target with that weight; ``embed_mtt``: the embedding is both
    teachers' penultimate layers (400 values: MSD then MTT) instead of MSD's alone."""
    import torch
    from torch import nn

    from tools.student import Student

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    x, emb, tags, speech, has_emb, aux = data

    def standardised(t):
        mu, sd = t[has_emb].mean(axis=0), t[has_emb].std(axis=0) + 1e-6
        return np.where(has_emb[:, None], (t - mu) / sd, 0.0).astype(np.float32)

    if embed_mtt:
        emb = np.hstack([emb, aux])
    emb_z, aux_z = standardised(emb), standardised(aux)
    n = len(x)
    rng = np.random.default_rng(seed)
    val = rng.random(n) < 0.03
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    model = Student(widths=tuple(widths), n_embedding=emb.shape[1], n_aux=aux.shape[1] if aux_weight > 0 else 0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    # The learning rate follows the clock (warm-up, then cosine to 0 at the time limit), so
    # a slower or busier machine trains fewer steps but always anneals.
    total_s = minutes * 60.0
    t_start = time.time()

    def set_lr():
        f = (time.time() - t_start) / total_s
        lr_now = lr * min(1.0, f / 0.05) * 0.5 * (1 + np.cos(np.pi * min(f, 1.0)))
        for g in opt.param_groups:
            g["lr"] = max(lr_now, lr * 1e-3)
    bce = nn.BCEWithLogitsLoss(reduction="none")
    t_end = t_start + total_s
    step, epoch = 0, 0

    def batch_of(idx):
        return (torch.from_numpy(x[idx].astype(np.float32)), torch.from_numpy(emb_z[idx]),
                torch.from_numpy(tags[idx]), torch.from_numpy(speech[idx][:, None]),
                torch.from_numpy(has_emb[idx].astype(np.float32)), torch.from_numpy(aux_z[idx]))

    def loss_of(b):
        xb, eb, tb, sb, hb, ab = b
        h = model.hidden_of(xb)
        pe, pt, ps = model.embedding(h), model.tags(h), model.speech(h)
        l_emb = (((pe - eb) ** 2).mean(dim=1) * hb).sum() / hb.sum().clamp(min=1)
        l_tag = (bce(pt, tb).mean(dim=1) * hb).sum() / hb.sum().clamp(min=1)
        l_sp = bce(ps, sb).mean()
        loss = l_emb + l_tag + 0.5 * l_sp
        if model.aux is not None:
            loss = loss + aux_weight * (((model.aux(h) - ab) ** 2).mean(dim=1) * hb).sum() / hb.sum().clamp(min=1)
        return loss, (l_emb.item(), l_tag.item(), l_sp.item())

    while time.time() < t_end:
        perm = rng.permutation(tr_idx)
        model.train()
        for i in range(0, len(perm) - batch + 1, batch):
            set_lr()
            loss, parts = loss_of(batch_of(perm[i:i + batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 50 == 0:
                print(f"  step {step} epoch {epoch} ({time.time() - t_start:.0f} s) emb {parts[0]:.3f} "
                      f"tags {parts[1]:.3f} speech {parts[2]:.3f}", file=sys.stderr, flush=True)
            if time.time() > t_end:
                break
        epoch += 1
    model.eval()
    with torch.no_grad():
        res = [loss_of(batch_of(va_idx[i:i + 256]))[1] for i in range(0, len(va_idx), 256)]
        pe = np.concatenate([model.logits(torch.from_numpy(x[va_idx[i:i + 256]].astype(np.float32)))[0].numpy()
                             for i in range(0, len(va_idx), 256)])
    m = has_emb[va_idx]
    r2 = 1.0 - ((pe[m] - emb_z[va_idx][m]) ** 2).mean() / emb_z[va_idx][m].var(axis=0).mean()
    report = {"steps": step, "epochs": epoch, "val_emb_mse": float(np.mean([r[0] for r in res])),
              "val_tag_bce": float(np.mean([r[1] for r in res])), "val_speech_bce": float(np.mean([r[2] for r in res])),
              "val_emb_r2": float(r2), "n_train": int(len(tr_idx)), "n_val": int(len(va_idx))}
    return model, report


def export(model, out: Path, tag_names: list[str], report: dict) -> None:
    import onnx
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    torch.onnx.export(model, torch.zeros(1, PATCH, FRONT_END["n_mels"]), str(tmp), input_names=["melspec"],
                      output_names=["embedding", "tags", "speech"],
                      dynamic_axes={"melspec": {0: "n"}, "embedding": {0: "n"}, "tags": {0: "n"}, "speech": {0: "n"}},
                      opset_version=17, dynamo=False)
    m = onnx.load(str(tmp))
    fe = LogMelFrontEnd()
    meta = {"embedding_version": EMBEDDING_VERSION, **{k: str(v) for k, v in FRONT_END.items()},
            "norm_tau_s": f"{fe.norm_tau_s:g}", "norm_db": f"{fe.norm_db:g}", "max_gain_db": f"{fe.max_gain_db:g}",
            "patch_frames": str(PATCH), "tag_names": ",".join(tag_names), "model_name": "mt-student",
            "teachers": "MSD_musicnn, MTT_musicnn (musicnn 0.1.0, ISC licence)",
            "distillation": json.dumps(report)}
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    atomic_write(out, m.SerializeToString())
    tmp.unlink()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=ROOT / "cache")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "embedding.onnx")
    ap.add_argument("--variants", type=int, default=3, help="signal chains per item, the clean one included")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--widths", default="128,128,192,256", help="the student's conv layer widths")
    ap.add_argument("--aux-mtt", type=float, default=0.0,
                    help="weight of the MTT teacher's penultimate layer as a training-only target (0: none)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training")
    ap.add_argument("--embed-mtt", action="store_true",
                    help="embedding = both teachers' penultimate layers (400 values) instead of MSD's (200)")
    ap.add_argument("--set", type=Path, default=None,
                    help="an .npz to keep the augmented training set in (reused when it exists)")
    args = ap.parse_args(argv)
    items = json.loads((args.cache / "distill" / "items.json").read_text())
    names = [it["name"] for it in items if (args.cache / "distill" / "teacher" / f"{it['name']}.npz").is_file()]
    print(f"{len(names)} items x {args.variants} chains", file=sys.stderr)
    n_speech = 120
    key = hashlib.sha1(json.dumps([names, args.variants, args.seed, n_speech]).encode()).hexdigest()
    data = training_set(args.set, lambda: build_set(args.cache, names, args.variants, args.seed, args.jobs,
                                                    n_speech=n_speech), key=key)
    print(f"{len(data[0])} patches", file=sys.stderr)
    widths = tuple(int(w) for w in args.widths.split(","))
    model, report = train(data, minutes=args.minutes, seed=args.seed, widths=widths, aux_weight=args.aux_mtt,
                          threads=args.threads, embed_mtt=args.embed_mtt)
    report["widths"] = list(widths)
    print(json.dumps(report), file=sys.stderr)
    from tools.corpus import Teachers

    export(model, args.out, Teachers(args.cache / "teacher").labels, report)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
