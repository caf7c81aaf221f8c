"""Model runner: an ONNX mood model, checked against the feature extractor it will be fed by.

The model takes ``features`` (float32, shape (n, n_features)) and returns raw
``(valence, arousal)`` (float32, shape (n, 2)). Its ``metadata_props`` carry the feature
spec it was trained with (see :meth:`realtime.features.FeatureExtractor.spec`) and how to
scale its outputs; a model whose spec does not match this build's extractor is refused.
Models load from ONNX only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.errors import MoodtrackError
from realtime.features import FEATURE_NAMES, FEATURE_VERSION, FeatureExtractor
from realtime.validate import finite_floats, positive_float, positive_int

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
        import onnxruntime as ort

        self.path = Path(path) if path is not None else default_model_path()
        if not self.path.is_file():
            raise MoodtrackError(
                f"model file {self.path} not found: pass --model PATH, or retrain it with "
                "'python tools/train.py --data ../shared/data' (see models/MODEL.md)"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several private types
            raise MoodtrackError(
                f"model file {self.path} is not a readable ONNX model ({exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0][:200]}); restore models/mood.onnx or pass --model PATH"
            ) from None
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        self.metadata = meta
        self.info = self._check(meta)
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        self._check_io()

    def _check(self, meta: dict[str, str]) -> ModelInfo:
        where = f"model {self.path}"
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

    def _check_io(self) -> None:
        """The graph takes (n, len(FEATURE_NAMES)) float features."""
        where = f"model {self.path}"
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise MoodtrackError(f"{where} has {len(inputs)} inputs and {len(outputs)} outputs, "
                                 "not one features input and a (valence, arousal) output; "
                                 "retrain it with tools/train.py")
        # (Declared output shapes are not checked: converters often declare [None, 1].)
        n_in = inputs[0].shape[-1] if inputs[0].shape else None
        if (isinstance(n_in, int) and n_in != len(FEATURE_NAMES)) or "float" not in inputs[0].type:
            raise MoodtrackError(
                f"{where} takes {inputs[0].type} of shape {inputs[0].shape}, but moodtrack feeds "
                f"{len(FEATURE_NAMES)} float features: it does not match its metadata; retrain it")

        # One update's worth of zeros: the graph must give one finite (valence, arousal).
        try:
            out = np.asarray(self._session.run([self._output], {self._input: np.zeros(
                (1, len(FEATURE_NAMES)), np.float32)})[0])
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
        return {k: typ(self.metadata[k]) for k, typ in _EXTRACTOR_KEYS.items()}

    def make_extractor(self, **options) -> FeatureExtractor:
        """A fresh extractor configured for this model (``options`` add e.g. ``update_hz``)."""
        ex = FeatureExtractor(**self.extractor_options(), **options)
        spec = ex.spec()
        bad = [k for k in spec if spec[k] != self.metadata.get(k)]
        if bad:
            raise MoodtrackError(f"model {self.path} does not match the extractor on {', '.join(bad)}")
        return ex

    @property
    def sample_rate(self) -> int:
        return int(self.metadata["sample_rate"])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Raw (valence, arousal) for each feature row: (n, n_features) -> (n, 2)."""
        x = np.ascontiguousarray(np.atleast_2d(features), dtype=np.float32)
        return self._session.run([self._output], {self._input: x})[0].reshape(-1, 2)
