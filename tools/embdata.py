"""Clips for the heads on the embedding network: every clip through the runtime's
:class:`realtime.embedding.EmbeddingExtractor` at the runtime's update rate.

Each clip is cached with every pool (:data:`realtime.embedding.POOLS`) so that heads
taking any subset can be compared without re-extracting; the cache is keyed by the
embedding network's hash. Variants are signal chains (``tools/augment.py``):

- ``orig``: the clip as it is; ``augN``: a random chain (seeded by clip and N); ``dlgN``:
  dialogue (training lines and voices) 0-10 dB over the music, then a random chain;
  ``revN``: a random generated room (RT60 0.2-1.5 s, 20-60 % wet);
- named transformations for the invariance figures: ``gain-24``, ``gain-30``,
  ``gain+6``, ``mp3_32``, ``aac_64``, ``opus_32``, ``pink20``, ``babble20``, ``tel``,
  ``reverb``, ``resample48``, ``dialogue6`` (lines and voices kept out of training),
  ``realvoice6`` (a real human voice: alsa-utils' speaker-test words).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: small matrices, busy cores

import hashlib
import sys
from pathlib import Path

import numpy as np

from tools import augment, voices
from tools.corpus import SR, load_16k
from tools.datasets import UPDATE_HZ, Clip, curve_targets, load_4q_labels, load_vgmidi_annotations, q4_targets

EXTRACT_OPTIONS = dict(update_hz=UPDATE_HZ, pools=("ctx_mean", "ctx_std", "short_mean", "short_rel", "ctx_mean_sw",
                                                  "short_rel_sw", "tonal"))
#: Names the cache folder after the pools it holds, so that a cache of other pools is not read.
_POOLS_TAG = hashlib.sha1(",".join(EXTRACT_OPTIONS["pools"]).encode()).hexdigest()[:6]

TRANSFORMS = {
    "gain-24": lambda y, rng, bank: augment.gain(y, rng, SR, db=-24.0),
    "gain-30": lambda y, rng, bank: augment.gain(y, rng, SR, db=-30.0),
    "gain+6": lambda y, rng, bank: augment.gain(y, rng, SR, db=6.0),
    "mp3_32": lambda y, rng, bank: augment.codec(y, rng, SR, name="libmp3lame", kbps=32),
    "aac_64": lambda y, rng, bank: augment.codec(y, rng, SR, name="aac", kbps=64),
    "opus_32": lambda y, rng, bank: augment.codec(y, rng, SR, name="libopus", kbps=32),
    "pink20": lambda y, rng, bank: augment.noise(y, rng, SR, snr_db=20.0, colour="pink"),
    "babble20": lambda y, rng, bank: augment.noise(y, rng, SR, snr_db=20.0, colour="babble", speech_bank=bank),
    "tel": lambda y, rng, bank: augment.band_limit(y, rng, SR, kind="telephone"),
    "reverb": lambda y, rng, bank: augment.reverb(y, rng, SR, rt60=0.8, wet=0.4),
    "resample48": lambda y, rng, bank: _resample_round_trip(y),
    "dialogue6": lambda y, rng, bank: augment.overlay_dialogue(y, rng, SR, bank, level_db=6.0)[0],
    # a real human voice: the words of alsa-utils' speaker-test recordings, 6 dB over the music
    "realvoice6": lambda y, rng, bank: augment.overlay_dialogue(y, rng, SR, voices.alsa_words(), level_db=6.0)[0],
}


def _resample_round_trip(y):
    import soxr

    return soxr.resample(soxr.resample(y, SR, 48000), 48000, SR).astype(np.float32)


_BANKS: dict = {}


def _bank(cache: Path, split: str):
    if split not in _BANKS:
        _BANKS[split] = augment.load_speech_bank(Path(cache) / "speech", split)
    return _BANKS[split]


def transformed(y: np.ndarray, variant: str, key: str, cache: Path) -> np.ndarray:
    if variant == "orig":
        return y
    rng = np.random.default_rng(int(hashlib.sha1(f"{variant}|{key}".encode()).hexdigest()[:8], 16))
    if variant.startswith("aug"):
        return augment.random_chain(y, rng, SR, _bank(cache, "train"))[0]
    if variant == "over4q":  # an instrument arrangement over a real 4Q clip, 0-8 dB above it
        return _over_music(y, key, rng)
    if variant.startswith("rev"):  # a generated room (RT60 0.2-1.5 s, 20-60 % wet), an invariance pair only
        return augment.reverb(y, rng, SR)
    if variant.startswith("dlg"):  # training lines and voices 0-10 dB over the music, then a random chain
        y = augment.overlay_dialogue(y, rng, SR, _bank(cache, "train"))[0]
        return augment.random_chain(y, rng, SR, _bank(cache, "train"), p_dialogue=0.0)[0]
    return TRANSFORMS[variant](y, rng, _bank(cache, "eval"))


def _over_music(y: np.ndarray, key: str, rng) -> np.ndarray:
    """``y`` 0-8 dB (RMS) above a 4Q clip chosen by ``key``: real music under the rendered
    instruments, so that an instrument head learns the instruments, not the renderer."""
    from tools.datasets import DEFAULT_DATA

    songs = sorted((Path(DEFAULT_DATA) / "4q" / "audio").glob("*.ogg"))
    bg = load_16k(str(songs[int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % len(songs)]))
    bg = np.resize(bg, y.size) if bg.size else np.zeros_like(y)
    gain = augment.rms(y) / max(augment.rms(bg), 1e-6) * 10 ** (-rng.uniform(0.0, 8.0) / 20.0)
    return (y + gain * bg).astype(np.float32)


def cached(cache: Path, network, dataset: str, variant: str, key: str, load_audio):
    """(t, X (all pools), level_db, speech, tags) of one clip, computed once."""
    from realtime.embedding import extract

    h = hashlib.sha1(key.encode()).hexdigest()[:12]
    f = Path(cache) / "features" / f"emb-{network.sha}-{_POOLS_TAG}" / f"{dataset}_{variant}" / f"{h}.npz"
    if f.is_file():
        z = np.load(f)
        return z["t"], z["X"], z["level"], z["speech"], z["tags"]
    y = transformed(load_audio(), variant, key, cache)
    t, X, level, speech, tags = extract(y, network, **EXTRACT_OPTIONS)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp.npz")
    np.savez(tmp, t=t, X=X.astype(np.float32), level=level, speech=speech, tags=tags.astype(np.float16))
    tmp.replace(f)
    return t, X, level, speech, tags


def select_pools(X: np.ndarray, pools, n_embedding: int) -> np.ndarray:
    """The columns of ``pools`` (in that order) from rows holding every pool of EXTRACT_OPTIONS."""
    from realtime.embedding import pool_width

    widths = [pool_width(p, n_embedding) for p in EXTRACT_OPTIONS["pools"]]
    starts = dict(zip(EXTRACT_OPTIONS["pools"], np.cumsum([0, *widths[:-1]])))
    return np.hstack([X[:, starts[p]:starts[p] + pool_width(p, n_embedding)] for p in pools])


def load_4q_emb(data, cache, network, *, variants=("orig",), target_mode="blend", groups=None, verbose=True):
    """The 4Q clips (of the artists ``groups(artist)`` accepts, default all) in each variant."""
    df = load_4q_labels(data)
    clips = []
    for variant in variants:
        for i, row in enumerate(df.itertuples(index=False)):
            if groups is not None and not groups(str(row.artist)):
                continue
            path = str(Path(data) / "4q" / "audio" / f"{row.song}.ogg")
            t, X, level, speech, tags = cached(cache, network, "4q", variant, row.song,
                                               lambda path=path: load_16k(path))
            v, a = q4_targets(row.v, row.a, row.quadrant, target_mode)
            y = np.tile([v, a], (len(t), 1)).astype(np.float64)
            clips.append(Clip("4q", str(row.artist), row.song, variant, t, X, y,
                              {"quadrant": row.quadrant, "v_tag": row.v, "a_tag": row.a,
                               "genres": row.genres, "speech": speech, "tags": tags, "level": level}))
            if verbose and (i + 1) % 100 == 0:
                print(f"4q/{variant}: {i + 1}/{len(df)}", file=sys.stderr, flush=True)
    return clips


def load_vgmidi_emb(data, cache, network, *, soundfonts=("fluidr3",), span_s=2.0, variants=("orig",),
                    verbose=True):
    from tools.render_vgmidi import rendered_path

    ann = load_vgmidi_annotations(data)
    clips = []
    for sf_name in soundfonts:
        for variant in variants:
            for pid, info in ann.items():
                wav = rendered_path(cache, sf_name, pid)
                if not wav.is_file():
                    continue
                t, X, level, speech, tags = cached(cache, network, f"vgmidi-{sf_name}", variant, pid,
                                                   lambda wav=wav: load_16k(str(wav)))
                d = info["duration_s"]
                y = np.c_[curve_targets(t, info["valence"], d, span_s=span_s),
                          curve_targets(t, info["arousal"], d, span_s=span_s)]
                clips.append(Clip("vgmidi", pid, pid, sf_name if variant == "orig" else f"{sf_name}-{variant}",
                                  t, X, y, {"duration_s": d, "measures": info["measures"],
                                            "valence": info["valence"], "arousal": info["arousal"],
                                            "speech": speech, "tags": tags, "level": level}))
            if verbose:
                print(f"vgmidi/{sf_name}/{variant}: done", file=sys.stderr, flush=True)
    return clips


def load_arrangement_emb(cache, network, *, soundfonts=("fluidr3", "musescore", "timgm"), variants=("orig",),
                         verbose=True):
    """The instrument arrangements (``tools/arrangements.py``) through the network; each
    clip's ``meta["instruments"]`` lists the families playing, ``group`` is the piece,
    ``variant`` the soundfont (``+over4q``: over a real 4Q clip)."""
    import json

    from tools.arrangements import arrangement_path

    labels = json.loads((Path(cache) / "arrangements" / "labels.json").read_text())
    clips = []
    for sf_name in soundfonts:
        for variant, key, info in ((v, k, i) for v in variants for k, i in labels.items()):
            wav = arrangement_path(cache, sf_name, key)
            t, X, level, speech, tags = cached(cache, network, f"arr-{sf_name}", variant, key,
                                               lambda wav=wav: load_16k(str(wav)))
            name = sf_name if variant == "orig" else f"{sf_name}+{variant}"
            clips.append(Clip("arrangements", info["piece"], key, name, t, X, np.zeros((len(t), 2)),
                              {"instruments": info["instruments"], "speech": speech, "tags": tags,
                               "level": level}))
        if verbose:
            print(f"arrangements/{sf_name}: done", file=sys.stderr, flush=True)
    return clips


# ----------------------------------------------------------------------- precompute
_NET = None


def _init_worker(path):
    global _NET
    from realtime.embedding import EmbeddingNetwork

    _NET = EmbeddingNetwork(path)


def _one(task):
    cache, dataset, variant, key, path = task
    cached(Path(cache), _NET, dataset, variant, key, lambda: load_16k(path))
    return key


def precompute(data, cache, embedding, *, jobs=2, q4_variants=("orig", "aug1", "aug2"),
               soundfonts=("fluidr3", "musescore", "timgm"), invariance=True, probes=(), log=print):
    """Extract every clip the heads and the figures need, in ``jobs`` processes; ``probes``:
    signal chains also extracted for the development clips (``tools/evaluate.py --cv-probes``)."""
    from multiprocessing import get_context

    from tools.datasets import holdout_group
    from tools.render_vgmidi import rendered_path

    df = load_4q_labels(data)
    tasks = []
    from tools.moodcore import DEFAULT_CONFIG, pair_variants

    pairs = [v for v in pair_variants(DEFAULT_CONFIG["inv_pairs"]) if v not in soundfonts]
    variants = list(q4_variants) + [v for v in (*probes, *pairs) if v not in q4_variants]
    if invariance:
        from tools.evaluate import INVARIANCE_VARIANTS

        variants += [v for v in INVARIANCE_VARIANTS if v not in variants]
    for v in variants:
        for r in df.itertuples(index=False):
            if v in q4_variants or v in probes or v in pairs or holdout_group(str(r.artist), "4q"):
                tasks.append((str(cache), "4q", v, r.song, str(Path(data) / "4q" / "audio" / f"{r.song}.ogg")))
    for sf_name in soundfonts:
        for pid in load_vgmidi_annotations(data):
            wav = rendered_path(cache, sf_name, pid)
            if wav.is_file():
                tasks.append((str(cache), f"vgmidi-{sf_name}", "orig", pid, str(wav)))
    labels = Path(cache) / "arrangements" / "labels.json"
    if labels.is_file():  # the instrument arrangements, when rendered
        import json

        from tools.arrangements import arrangement_path

        for sf_name in soundfonts:
            for key in json.loads(labels.read_text()):
                wav = arrangement_path(cache, sf_name, key)
                if wav.is_file():  # alone, and over a real 4Q clip
                    tasks += [(str(cache), f"arr-{sf_name}", v, key, str(wav)) for v in ("orig", "over4q")]
    log(f"{len(tasks)} clips to extract")
    for split in ("train", "eval"):  # made once, here, not by the workers at the same time
        _bank(cache, split)
    with get_context("spawn").Pool(jobs, initializer=_init_worker, initargs=(str(embedding),)) as pool:
        for i, _ in enumerate(pool.imap_unordered(_one, tasks, chunksize=8)):
            if (i + 1) % 200 == 0:
                log(f"  extracted {i + 1}/{len(tasks)}")


if __name__ == "__main__":
    import argparse

    from tools.datasets import DEFAULT_CACHE, DEFAULT_DATA

    ap = argparse.ArgumentParser(description="extract every clip through the embedding network (cached)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--embedding", type=Path, default=Path(__file__).resolve().parent.parent / "models" / "embedding.onnx")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--probes", default="dialogue6,realvoice6",
                    help="signal chains also extracted for the development clips (CV probes)")
    a = ap.parse_args()
    precompute(a.data, a.cache, a.embedding, jobs=a.jobs, probes=tuple(p for p in a.probes.split(",") if p),
               log=lambda s: print(s, file=sys.stderr, flush=True))
