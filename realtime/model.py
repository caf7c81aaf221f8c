"""Model runner: an ONNX mood model, checked against the feature extractor it will be fed by.

The model takes ``features`` (float32, shape (n, n_features)) and returns raw
``(valence, arousal)`` (float32, shape (n, 2)). Its ``metadata_props`` carry the feature
spec it was trained with (see :meth:`realtime.features.FeatureExtractor.spec`) and how to
scale its outputs; a model whose spec does not match this build's extractor is refused.
Models load from ONNX only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.errors import MoodtrackError
from realtime.onnxrun import open_session
from realtime.features import FEATURE_NAMES, FEATURE_VERSION, FeatureExtractor
from realtime.validate import finite_floats, positive_float, positive_int

#: Metadata keys of a head on the embedding network (see :mod:`realtime.embedding`).
_EMBEDDING_KEYS = {
    "sample_rate": int, "patch_hop_s": float, "context_s": float, "short_context_s": float,
    "rel_tau_s": float,
}

#: Metadata keys every model must carry besides the extractor spec.
REQUIRED_KEYS = ("output_scale", "residual_std", "model_name", "model_version")

#: Longest analysis context a model may ask for, seconds (its buffers are held per stream).
MAX_CONTEXT_S = 120.0

#: Extractor options a model fixes (the rest, such as the update rate, are the user's).
_EXTRACTOR_KEYS = {
    "sample_rate": int, "n_fft": int, "hop_length": int, "n_mels": int,
    "context_s": float, "short_context_s": float,
}


def check_extractor_metadata(meta: dict[str, str], where: str) -> dict:
    """The extractor options in a model's metadata, each range-checked (see
    :mod:`realtime.validate`): a rate, frame, hop or context no extractor can use is refused
    when the model loads, naming the key."""
    rate = positive_int(meta, "sample_rate", where, lo=8000, hi=192000)
    n_fft = positive_int(meta, "n_fft", where, lo=64, hi=65536)
    opts = {"sample_rate": rate, "n_fft": n_fft,
            "hop_length": positive_int(meta, "hop_length", where, hi=n_fft),
            "n_mels": positive_int(meta, "n_mels", where, hi=512),
            "context_s": positive_float(meta, "context_s", where, hi=MAX_CONTEXT_S)}
    opts["short_context_s"] = positive_float(meta, "short_context_s", where,
                                             hi=opts["context_s"])
    return opts


def default_model_path() -> Path:
    """``$MOODTRACK_MODEL``, else the shipped ``models/mood.onnx`` (see :mod:`realtime.resources`)."""
    env = os.environ.get("MOODTRACK_MODEL")
    if env:
        return Path(env)
    from realtime.resources import shipped_dir

    return shipped_dir("models") / "mood.onnx"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    metadata: dict[str, str]
    output_scale: tuple[float, float]
    residual_std: tuple[float, float]


class MoodModel:
    """An onnxruntime session on one intra-op thread, with the model's metadata checked."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_model_path()
        self._session = open_session(
            self.path, what="model",
            missing="pass --model PATH, or retrain it with 'python tools/train.py --data "
                    "../shared/data' (see models/MODEL.md)",
            unreadable="restore models/mood.onnx or pass --model PATH")
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        self.metadata = meta
        self.info = self._check(meta)
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        self._check_io()

    @property
    def uses_embedding(self) -> bool:
        """True for a head on the embedding network, False for one on hand-made features."""
        return "embedding_model" in self.metadata

    def _check(self, meta: dict[str, str]) -> ModelInfo:
        where = f"model {self.path}"
        if "embedding_model" in meta:
            return self._check_embedding_head(meta)
        missing = [k for k in (*REQUIRED_KEYS, *_EXTRACTOR_KEYS, "feature_version", "feature_names")
                   if k not in meta]
        if missing:
            raise MoodtrackError(f"{where} lacks metadata {', '.join(missing)}: it was not exported "
                                 "by tools/train.py; retrain it")
        if meta["feature_version"] != FEATURE_VERSION:
            raise MoodtrackError(
                f"{where} was trained on features {meta['feature_version']!r} but this moodtrack "
                f"computes {FEATURE_VERSION!r}; retrain the model or use a matching moodtrack version"
            )
        names = tuple(meta["feature_names"].split(","))
        if names != FEATURE_NAMES:
            raise MoodtrackError(f"{where} expects {len(names)} features whose names differ from the "
                                 f"extractor's {len(FEATURE_NAMES)}; retrain the model")
        scale = finite_floats(meta, "output_scale", where, n=2)
        resid = finite_floats(meta, "residual_std", where, n=2, positive=True)
        check_extractor_metadata(meta, where)
        return ModelInfo(meta["model_name"], meta["model_version"], meta, scale, resid)  # type: ignore[arg-type]

    def _check_embedding_head(self, meta: dict[str, str]) -> ModelInfo:
        from realtime.embedding import POOLS, EmbeddingNetwork

        where = f"model {self.path}"
        missing = [k for k in (*REQUIRED_KEYS, *_EMBEDDING_KEYS, "embedding_sha", "pools") if k not in meta]
        if missing:
            raise MoodtrackError(f"{where} lacks metadata {', '.join(missing)}: it was not exported "
                                 "by tools/train.py; retrain it")
        self.network = EmbeddingNetwork(self.path.parent / meta["embedding_model"])
        if self.network.sha != meta["embedding_sha"]:
            raise MoodtrackError(
                f"{where} was trained on another embedding network than {self.network.path}; "
                "retrain the head (python tools/train.py) or restore the matching embedding.onnx")
        try:
            opts = {k: typ(meta[k]) for k, typ in _EMBEDDING_KEYS.items()}
            scale = tuple(float(x) for x in meta["output_scale"].split(","))
            resid = tuple(float(x) for x in meta["residual_std"].split(","))
        except ValueError as exc:
            raise MoodtrackError(f"{where} has malformed metadata ({exc})") from None
        pools = tuple(meta["pools"].split(","))
        if any(p not in POOLS for p in pools) or opts["sample_rate"] != self.network.front_end["sample_rate"]:
            raise MoodtrackError(f"{where} has pools or a sample rate its embedding network does not have")
        if len(scale) != 2 or len(resid) != 2 or not all(np.isfinite(scale + resid)) or min(resid) <= 0:
            raise MoodtrackError(f"{where}: output_scale and residual_std need two finite positive values")
        self._embedding_opts = {k: v for k, v in opts.items() if k != "sample_rate"} | {"pools": pools}
        from realtime.vocab import GenreMap, InstrumentMap

        self.tag_head = (TagHead(self.path.parent / meta["tags_model"], self.network)
                         if meta.get("tags_model") else None)
        head = self.tag_head
        self.instruments = InstrumentMap(self.network.tag_names, head.instrument_names if head else (),
                                         head.calibration if head else None)
        self.genres = GenreMap(head.genre_names, self.network.tag_names) if head else None
        return ModelInfo(meta["model_name"], meta["model_version"], meta, scale, resid)  # type: ignore[arg-type]

    def n_inputs(self) -> int:
        """Width of the feature rows the graph takes."""
        if self.uses_embedding:
            from realtime.embedding import pool_width

            return sum(pool_width(p, self.network.n_embedding) for p in self._embedding_opts["pools"])
        return len(FEATURE_NAMES)

    def _check_io(self) -> None:
        """The graph takes (n, n_inputs) float features."""
        where = f"model {self.path}"
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise MoodtrackError(f"{where} has {len(inputs)} inputs and {len(outputs)} outputs, "
                                 "not one features input and a (valence, arousal) output; "
                                 "retrain it with tools/train.py")
        # (Declared output shapes are not checked: converters often declare [None, 1].)
        n_in = inputs[0].shape[-1] if inputs[0].shape else None
        if (isinstance(n_in, int) and n_in != self.n_inputs()) or "float" not in inputs[0].type:
            raise MoodtrackError(
                f"{where} takes {inputs[0].type} of shape {inputs[0].shape}, but moodtrack feeds "
                f"{self.n_inputs()} float features: it does not match its metadata; retrain it")

        # One update's worth of zeros: the graph must give one finite (valence, arousal).
        try:
            out = np.asarray(self._session.run([self._output], {self._input: np.zeros(
                (1, self.n_inputs()), np.float32)})[0])
        except Exception as exc:  # onnxruntime raises several private types
            raise MoodtrackError(f"{where} fails on one row of features ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200]}); retrain it") from None
        if out.size != 2:
            raise MoodtrackError(f"{where} gives {out.size} values per update, not 2 (valence, "
                                 "arousal); retrain it with tools/train.py")
        if not np.all(np.isfinite(out.astype(np.float64))):
            raise MoodtrackError(f"{where} gives a non-finite output ({out.ravel().tolist()}) for "
                                 "one row of features: it is broken; restore models/mood.onnx or "
                                 "retrain it")

    def extractor_options(self) -> dict:
        """The extractor options this model was trained with."""
        if self.uses_embedding:
            return dict(self._embedding_opts)
        return {k: typ(self.metadata[k]) for k, typ in _EXTRACTOR_KEYS.items()}

    def make_extractor(self, **options):
        """A fresh extractor configured for this model (``options`` add e.g. ``update_hz``):
        an :class:`realtime.embedding.EmbeddingExtractor` or a :class:`FeatureExtractor`."""
        if self.uses_embedding:
            from realtime.embedding import EmbeddingExtractor

            return EmbeddingExtractor(self.network, **self._embedding_opts, **options)
        ex = FeatureExtractor(**self.extractor_options(), **options)
        spec = ex.spec()
        bad = [k for k in spec if spec[k] != self.metadata.get(k)]
        if bad:
            raise MoodtrackError(f"model {self.path} does not match the extractor on {', '.join(bad)}")
        return ex

    @property
    def sample_rate(self) -> int:
        return int(self.metadata["sample_rate"])

    def outputs(self, updates) -> "ModelOutput":
        """Everything the model says about a list of extractor updates: raw (valence,
        arousal) and, for a head on the embedding network, speech and tag scores."""
        from realtime.mood import ModelOutput

        va = self.predict(np.stack([u.features for u in updates]))
        if not self.uses_embedding:
            return ModelOutput(va)
        tags = np.stack([u.tags for u in updates])
        if self.tag_head is None:
            groups = {"instruments": (self.instruments.names, self.instruments(tags))}
        else:
            genres, instruments = self.tag_head(np.stack([u.context for u in updates]), tags)
            groups = {"instruments": (self.instruments.names, self.instruments(tags, instruments)),
                      "genres": (self.genres.names, self.genres(genres, tags))}
        return ModelOutput(va, speech=np.array([u.speech for u in updates], np.float64), tags=groups)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Raw (valence, arousal) for each feature row: (n, n_features) -> (n, 2)."""
        x = np.ascontiguousarray(np.atleast_2d(features), dtype=np.float32)
        return self._session.run([self._output], {self._input: x})[0].reshape(-1, 2)


class TagHead:
    """The tag head (``tags.onnx`` beside the mood head): per update, from the context
    embedding and the tag probabilities, the probability of each AllMusic genre and of
    each instrument it was trained on (metadata ``genre_names``, ``instrument_names``)."""

    def __init__(self, path: Path, network):
        self._session = open_session(path, what="tag model",
                                     missing="restore models/tags.onnx or retrain it with "
                                             "'python tools/train_tags.py'",
                                     unreadable="restore models/tags.onnx")
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        if meta.get("embedding_sha") != network.sha or not meta.get("genre_names"):
            raise MoodtrackError(f"tag model {path} was not trained on {network.path}; "
                                 "retrain it with 'python tools/train_tags.py'")
        self.genre_names = tuple(meta["genre_names"].split(","))
        self.instrument_names = tuple(n for n in meta.get("instrument_names", "").split(",") if n)
        try:  # teacher-tag instruments -> presence probabilities (see realtime.vocab.InstrumentMap)
            cal = json.loads(meta.get("instrument_calibration", "{}"))
            self.calibration = {str(k): (float(a), float(b)) for k, (a, b) in cal.items()}
        except (ValueError, TypeError) as exc:
            raise MoodtrackError(f"tag model {path} has malformed instrument_calibration ({exc}); "
                                 "retrain it with 'python tools/train_tags.py'") from None
        self._input = self._session.get_inputs()[0].name
        outs = [o.name for o in self._session.get_outputs()]
        self._output = "probabilities" if "probabilities" in outs else outs[-1]
        self._width = len(self.genre_names) + len(self.instrument_names)
        try:
            p = self(np.zeros((1, network.n_embedding), np.float32),
                     np.zeros((1, len(network.tag_names)), np.float32))
        except Exception as exc:  # onnxruntime raises several private types
            raise MoodtrackError(f"tag model {path} fails on one row ({type(exc).__name__}); "
                                 "retrain it with 'python tools/train_tags.py'") from None
        if not all(np.all(np.isfinite(x)) for x in p):
            raise MoodtrackError(f"tag model {path} gives non-finite scores; retrain it")

    def __call__(self, context: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(genre probabilities (n, n_genres), instrument probabilities (n, n_instruments))."""
        x = np.ascontiguousarray(np.hstack([context, tags]), dtype=np.float32)
        p = np.asarray(self._session.run([self._output], {self._input: x})[0], np.float32)
        if p.size != x.shape[0] * self._width:
            raise MoodtrackError(f"the tag model gives {p.size // max(x.shape[0], 1)} scores per row, "
                                 f"not {self._width} (its metadata's genres and instruments); retrain it")
        p = p.reshape(x.shape[0], self._width)
        g = len(self.genre_names)
        return p[:, :g], p[:, g:]
