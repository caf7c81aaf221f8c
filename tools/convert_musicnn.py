"""Convert musicnn's MSD_musicnn and MTT_musicnn checkpoints (PyPI ``musicnn`` 0.1.0, ISC
licence, Pons & Serra 2019) to ONNX: the teachers the shipped embedding network is
distilled from. Training-time only; the runtime never loads TensorFlow.

Needs its own environment (TensorFlow <= 2.15 for ``tf.compat.v1.layers``)::

    python3.11 -m venv ~/tfenv
    ~/tfenv/bin/pip install tensorflow-cpu==2.15.1 numpy==1.26.4 tf2onnx==1.17.0 onnx==1.17.0 \
        'protobuf>=4.25,<5' onnxruntime
    ~/tfenv/bin/pip install --no-deps musicnn
    ~/tfenv/bin/python tools/convert_musicnn.py --out cache/teacher

The graph is built with ``training=False`` as a Python constant (no conditional ops), the
checkpoint restored from the package folder directly (its ``checkpoint`` file names the
author's machine, and musicnn's own extractor hides a failed restore), frozen, converted,
and checked against TensorFlow on random patches. Outputs per model: ``melspec`` float32
``(n, 187, 96)`` in; ``tags`` (sigmoid), ``logits``, ``penultimate`` (200) out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

N_FRAMES = 187
N_MELS = 96


def convert(model: str, out: Path, *, opset: int = 15) -> Path:
    import tensorflow as tf
    import tf2onnx
    import musicnn
    from musicnn import configuration as config
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, N_MELS], name="melspec")
        y, _, _, _, _, _, _, _, penultimate = models.define_model(
            x, False, model, len(config.MTT_LABELS if "MTT" in model else config.MSD_LABELS))
        tf.identity(tf.nn.sigmoid(y), name="tags")
        tf.identity(y, name="logits")
        tf.identity(penultimate, name="penultimate")
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
        ckpt = os.path.join(os.path.dirname(musicnn.__file__), model)
        saver = tf.compat.v1.train.Saver()
        saver.restore(sess, os.path.join(ckpt, ""))  # raises if the weights are not there
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            sess, graph.as_graph_def(), ["tags", "logits", "penultimate"])
        rng = np.random.default_rng(0)
        probe = rng.uniform(0, 3, (4, N_FRAMES, N_MELS)).astype(np.float32)
        want = sess.run(["tags:0", "penultimate:0"], {x: probe})
    labels = config.MTT_LABELS if "MTT" in model else config.MSD_LABELS
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{model.lower()}.onnx"
    model_proto, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=["melspec:0"], output_names=["tags:0", "logits:0", "penultimate:0"],
        opset=opset)
    meta = model_proto.metadata_props.add()
    meta.key, meta.value = "labels", ",".join(labels)
    path.write_bytes(model_proto.SerializeToString())

    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = s.run(["tags:0", "penultimate:0"], {"melspec:0": probe})
    err = [float(np.max(np.abs(g - w))) for g, w in zip(got, want)]
    print(f"{path}: ONNX vs TensorFlow max |diff| tags {err[0]:.2g}, penultimate {err[1]:.2g}")
    if max(err) > 1e-3:
        raise SystemExit(f"{path}: conversion does not match TensorFlow")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("cache/teacher"))
    ap.add_argument("--models", default="MSD_musicnn,MTT_musicnn")
    args = ap.parse_args(argv)
    for m in args.models.split(","):
        convert(m, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
