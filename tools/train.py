"""Train the mood model on 4Q + VGMIDI and export ``models/mood.onnx`` with its metadata.

    python tools/render_vgmidi.py --data ../shared/data      # once: MIDI -> audio (cache/)
    python tools/train.py --data ../shared/data --out models/mood.onnx

Steps (fixed seeds throughout):

1. every clip (4Q audio and its augmented copy; VGMIDI renderings through each soundfont)
   runs through the runtime extractor at the runtime's 2 Hz update rate (cached in cache/);
2. group-disjoint cross-validation (``tools/evaluate.py``) on the development groups gives
   the figures stored in the metadata, the residual std (confidence) and the output scale;
3. the model is refit on all clips (development + hold-out groups) and exported;
   ``--development-only`` refits on the development groups alone, for scoring the hold-out
   through ``moodtrack analyze`` (``tools/score_analyze.py --model``): never ship that one.

``--cv-folds 0`` skips step 2 (residual std and output scale then come from the
training fit; quicker, for trying things).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: small matrices, busy cores

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from realtime.features import FeatureExtractor  # noqa: E402
from realtime.outputs import atomic_write  # noqa: E402
from tools.datasets import DEFAULT_CACHE, DEFAULT_DATA, UPDATE_HZ  # noqa: E402
from tools.moodcore import DEFAULT_CONFIG, fit_head, output_scale_from  # noqa: E402
from tools.onnx_export import export_model  # noqa: E402

MODEL_VERSION = "4.0"

TRAINING_DATA = ("4Q audio emotion dataset (Panda, Malheiro & Paiva 2018, IEEE TAFFC), 707 clips, "
                 "static tag-derived valence/arousal + quadrant; VGMIDI (Ferreira & Whitehead 2019, "
                 "ISMIR), 158 piano pieces rendered with fluidsynth, per-measure listener-mean curves")


def train_export(clips, config: dict, out: Path, *, cv: dict | None = None, extra: dict | None = None,
                 name: str = "moodtrack-mood", version: str = MODEL_VERSION,
                 embedding: Path = ROOT / "models" / "embedding.onnx"):
    """Fit ``config['model']`` on ``clips`` and export it with metadata. Returns (model, path)."""
    model, X, Y, w = fit_head(clips, config)
    raw = model.predict(X)
    if cv is not None:
        p95 = np.asarray(cv["raw_output_p95"])
        scale = tuple(float(0.9 / max(x, 1e-3)) for x in p95)
        resid = tuple(cv["residual_std"])
    else:
        scale = output_scale_from(raw)
        resid = tuple(float(x) for x in np.sqrt(np.average((raw - Y) ** 2, axis=0, weights=w)))
    meta = {
        "training_data": TRAINING_DATA,
        "training_rows": str(len(X)),
        "trained_at": dt.date.today().isoformat(),
        "update_hz": f"{UPDATE_HZ:g}",
        "config": json.dumps(config, sort_keys=True),
        "seed": str(config["seed"]),
        "output_range": "valence, arousal in [-1, 1] after output_scale and clipping",
        **(extra or {}),
    }
    if cv is not None:
        meta["cv"] = json.dumps({k: [round(v["mean"], 4), round(v["std"], 4)]
                                 for k, v in cv["summary"].items() if not k.endswith("_s")})
    if config.get("features", "hand") == "emb":
        spec = embedding_spec(embedding, config)
    else:
        spec = FeatureExtractor().spec()
    path = export_model(model, path=out, extractor_spec=spec, output_scale=scale,
                        residual_std=resid, name=name, version=version, extra=meta, n_features=X.shape[1])
    return model, path


def embedding_spec(embedding: Path, config: dict) -> dict[str, str]:
    """The metadata that ties a head to its embedding network (same folder as the head)."""
    from realtime.embedding import EmbeddingExtractor, EmbeddingNetwork

    net = EmbeddingNetwork(embedding)
    ex = EmbeddingExtractor(net, pools=tuple(x for x in config["pools"].split(",") if x))
    spec = {**ex.spec(), "embedding_model": Path(embedding).name,
            "sample_rate": str(net.front_end["sample_rate"])}
    tags = Path(embedding).with_name("tags.onnx")
    if tags.is_file():  # the genre head, if trained on this embedding network
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(tags)).metadata_props}
        if meta.get("embedding_sha") == net.sha:
            spec["tags_model"] = tags.name
    return spec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "mood.onnx")
    ap.add_argument("--report", type=Path, default=None,
                    help="where the CV report (JSON, markdown) and latency go (default: models/eval, "
                         "with --development-only the folder of --out)")
    ap.add_argument("--figures", type=Path, default=None,
                    help="where the CV figures go (default: models/figures, with --development-only the folder of --out)")
    ap.add_argument("--cv-folds", type=int, default=5)
    ap.add_argument("--development-only", action="store_true",
                    help="fit the exported model without the hold-out groups (to score them; not to ship)")
    for k, v in DEFAULT_CONFIG.items():
        ap.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = ap.parse_args(argv)
    config = {k: getattr(args, k) for k in DEFAULT_CONFIG}
    if args.development_only and args.out.resolve().parent == (ROOT / "models").resolve():
        ap.error("--development-only: give --out outside models/ (a model without the hold-out groups is not shipped)")
    beside = args.out.parent if args.development_only else None
    networks = {n: (ROOT / "models" / n).read_bytes() for n in ("embedding.onnx", "tags.onnx")} if beside else {}
    for name, data in networks.items():  # beside the head, so that --model finds them; never another's
        if (beside / name).is_file() and (beside / name).read_bytes() != data:
            ap.error(f"--development-only: {beside / name} exists and is not models/{name}; "
                     "give --out in a folder of its own")
    args.report = args.report or beside or ROOT / "models" / "eval"
    args.figures = args.figures or beside or ROOT / "models" / "figures"
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731

    from tools.evaluate import cross_validate, figures, load_all, markdown_table

    np.random.seed(config["seed"])
    clips = load_all(args.data, args.cache, config)
    cv = None
    if args.cv_folds > 1:
        cv = cross_validate(clips, config, n_folds=args.cv_folds, log=log)
        args.report.mkdir(parents=True, exist_ok=True)
        figures(cv, args.figures)
        cv = {k: v for k, v in cv.items() if not k.startswith("_")}
        (args.report / "cv_report.json").write_text(json.dumps(cv, indent=1))
        (args.report / "cv_report.md").write_text(markdown_table(cv["summary"]) + "\n")
        print(markdown_table(cv["summary"]))
    if args.development_only:
        from tools.datasets import holdout_group

        clips = [c for c in clips if not holdout_group(c.group, c.source)]
        log(f"fitting the model on the development groups only ({len(clips)} clips)")
    else:
        log("fitting the final model on all clips")
    _, path = train_export(clips, config, args.out, cv=cv)
    print(f"wrote {path}")
    for name, data in networks.items():  # usable as --model: the networks it was trained on beside it
        atomic_write(path.parent / name, data)
    from tools.evaluate import latency_ms

    lat = latency_ms(path)
    print(f"single-row latency through MoodModel.predict: median {lat['median_ms']:.3f} ms, "
          f"p99 {lat['p99_ms']:.3f} ms")
    if cv is not None:
        (args.report / "latency.json").write_text(json.dumps(lat, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
