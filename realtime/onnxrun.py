"""One way to open a shipped ONNX model: onnxruntime on one CPU thread, errors as one line."""

from __future__ import annotations

from pathlib import Path

from realtime.errors import MoodtrackError


def open_session(path: Path, *, what: str, missing: str, unreadable: str):
    """An ``onnxruntime.InferenceSession`` of ``path`` on one intra-op thread.

    ``what`` names the file in messages ("model", "embedding model", ...); ``missing`` and
    ``unreadable`` say what to do when it is not there or not a readable ONNX model.
    """
    import onnxruntime as ort

    if not Path(path).is_file():
        raise MoodtrackError(f"{what} file {path} not found: {missing}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several private types
        raise MoodtrackError(
            f"{what} file {path} is not a readable ONNX model ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0][:200]}); {unreadable}") from None
