"""Speech and tag plumbing: a model stage's extras reach the updates, CSV, ZeroMQ (mood and
``tags`` topics) and the analyze summaries. The model here is a test double wrapping the
tiny trained model: its (valence, arousal) are real, its speech and tags are known values."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import zmq

from realtime import batch
from realtime.model import MoodModel
from realtime.mood import ModelOutput
from realtime.pipeline import Pipeline
from realtime.sinks import CSV_COLUMNS, CsvSink, ZmqSink
from realtime.tags import TagWindow, clip_tags, format_tags, top_k
from tests.conftest import SR, tone_mix
from tests.test_sinks import ctx, handshake, make_update, sub_socket  # noqa: F401

INSTRUMENTS = ("piano", "strings", "drums")
GENRES = ("classical", "jazz")


class ExtrasModel:
    """The k-th feature row (counting across calls) gets speech ``(k % 5) / 4``; tags only
    on even rows (NaN on odd ones, as a tagger running at a lower rate): piano 0.9,
    strings 0.4 / 0.5 on alternate even rows, drums 0.1; classical 0.8, jazz 0.3."""

    def __init__(self, real: MoodModel):
        self.real = real
        self.k = 0

    def __getattr__(self, name):  # sample_rate, info, make_extractor: the real model's
        return getattr(self.real, name)

    def predict(self, features):
        va = self.real.predict(features)
        k = self.k + np.arange(len(va))
        self.k += len(va)
        inst = np.c_[np.full(len(k), 0.9), 0.4 + 0.1 * ((k // 2) % 2), np.full(len(k), 0.1)]
        gen = np.c_[np.full(len(k), 0.8), np.full(len(k), 0.3)]
        inst[k % 2 == 1] = np.nan
        gen[k % 2 == 1] = np.nan
        return ModelOutput(va=va, speech=(k % 5) / 4.0,
                           tags={"instruments": (INSTRUMENTS, inst), "genres": (GENRES, gen)})


@pytest.fixture(scope="module")
def real_model(tiny_model_path):
    return MoodModel(tiny_model_path)


def run(model, seconds=5.0, **kw):
    p = Pipeline(model, update_hz=4.0, **kw)
    y = tone_mix(seconds, seed=7)
    out = []
    for i in range(0, len(y), 5000):
        out += p.push(y[i:i + 5000], sample_rate=SR)
    return out + p.finish()


def test_a_model_that_returns_only_va_gives_no_speech_and_no_tags(real_model):
    ups = run(real_model, 3.0)
    assert ups and all(u.speech is None and u.tags is None for u in ups)


def test_speech_and_tags_reach_the_updates_about_once_a_second(real_model):
    plain = run(real_model)
    ups = run(ExtrasModel(real_model))
    assert [u.t for u in ups] == [u.t for u in plain] and len(ups) == 17  # t = 1.0 .. 5.0
    np.testing.assert_allclose([u.valence for u in ups], [u.valence for u in plain])
    assert [u.speech for u in ups] == [(k % 5) / 4 for k in range(len(ups))]
    tagged = [(k, u) for k, u in enumerate(ups) if u.tags is not None]
    assert [u.t for _, u in tagged] == [1.0, 2.0, 3.0, 4.0, 5.0]
    first = tagged[0][1].tags  # row 0 alone
    assert first == {"instruments": [["piano", 0.9], ["strings", 0.4], ["drums", 0.1]],
                     "genres": [["classical", 0.8], ["jazz", 0.3]]}
    # each later one: the mean of the even rows of the second before (k-3 .. k)
    for k, u in tagged[1:]:
        strings = np.mean([0.4 + 0.1 * ((j // 2) % 2) for j in range(k - 3, k + 1) if j % 2 == 0])
        assert u.tags["instruments"][1] == ["strings", pytest.approx(strings)]
        assert [n for n, _ in u.tags["instruments"]] == ["piano", "strings", "drums"]


def test_tag_window_sorts_means_and_restarts_on_a_new_vocabulary():
    w = TagWindow(interval_s=1.0)
    assert w.add(0.5, None) is None
    assert w.add(1.0, {"genres": (("a", "b"), [0.2, 0.6])}) == {"genres": [["b", 0.6], ["a", 0.2]]}
    assert w.add(1.5, {"genres": (("a", "b"), [0.8, np.nan])}) is None
    assert w.add(2.0, {"genres": (("a", "b"), [0.6, 0.4])}) == {"genres": [["a", 0.7], ["b", 0.4]]}
    assert w.add(3.0, {"genres": (("c",), [0.5])}) == {"genres": [["c", 0.5]]}


def test_csv_has_the_speech_column(real_model, tmp_path):
    sink = CsvSink(tmp_path / "t.csv")
    try:
        ups = run(ExtrasModel(real_model), 2.0, sinks=[sink])
    finally:
        sink.close()
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS and "speech" in CSV_COLUMNS
    assert [float(r["speech"]) for r in rows] == [u.speech for u in ups]
    assert all(float(r["loudness_s"]) < -10 for r in rows)


def test_zmq_publishes_speech_and_a_tags_topic(ctx):  # noqa: F811
    sink = ZmqSink("tcp://127.0.0.1:*")
    mood = sub_socket(ctx, sink.endpoint, RCVTIMEO=3000)
    tags = sub_socket(ctx, sink.endpoint, RCVTIMEO=3000)
    tags.setsockopt(zmq.UNSUBSCRIBE, b"mood")
    tags.setsockopt(zmq.SUBSCRIBE, b"tags")
    try:
        seq = handshake(sink, [mood])
        while True:  # the tags subscriber has joined once it sees a tags message
            u = make_update(seq)
            u.tags = {"instruments": [[f"i{j}", 1 - j / 10] for j in range(8)]}
            sink.emit(u)
            seq += 1
            if tags.poll(20):
                break
        tags.recv_multipart()
        mood.setsockopt(zmq.RCVTIMEO, 200)
        while True:  # drain the mood subscriber
            try:
                mood.recv_multipart()
            except zmq.Again:
                break
        u = make_update(seq)
        u.speech, u.loudness_m, u.loudness_s = 0.25, -23.456, -24.0
        u.tags = {"instruments": [["piano", 0.9123456], ["strings", 0.5]],
                  "genres": [[f"g{j}", 0.9 - j / 10] for j in range(7)]}
        sink.emit(u)
        plain = make_update(seq + 1)
        sink.emit(plain)
        mood.setsockopt(zmq.RCVTIMEO, 3000)
        topic, body = mood.recv_multipart()
        msg = json.loads(body)
        assert topic == b"mood" and (msg["speech"], msg["loudness_m"], msg["loudness_s"]) == \
            (0.25, -23.46, -24.0) and "tags" not in msg
        topic, body = tags.recv_multipart()
        t = json.loads(body)
        assert topic == b"tags" and list(t) == ["schema", "seq", "t", "wall", "instruments", "genres"]
        assert t["t"] == u.t and t["schema"] == 1
        assert t["instruments"] == [["piano", 0.9123456], ["strings", 0.5]]
        assert t["genres"] == [[f"g{j}", pytest.approx(0.9 - j / 10)] for j in range(5)]  # top 5
        assert json.loads(mood.recv_multipart()[1])["speech"] is None  # the plain update
        with pytest.raises(zmq.Again):
            tags.setsockopt(zmq.RCVTIMEO, 200)
            tags.recv_multipart()  # an update without tags sends no tags message
    finally:
        mood.close()
        tags.close()
        sink.close()


def test_clip_tags_and_summary_text():
    ups = [{"instruments": [["piano", 0.9], ["strings", 0.2]]}, None,
           {"instruments": [["strings", 0.6], ["piano", 0.5]], "genres": [["jazz", 0.4]]}]
    c = clip_tags(ups)
    assert c == {"instruments": [{"tag": "piano", "score": 0.7}, {"tag": "strings", "score": 0.4}],
                 "genres": [{"tag": "jazz", "score": 0.4}]}
    assert format_tags(c["instruments"]) == "piano 0.70; strings 0.40"
    assert clip_tags([None]) == {"instruments": [], "genres": []}
    assert top_k(None) == {"instruments": [], "genres": []}


def test_analyze_summaries_carry_clip_level_tags(real_model, tiny_model_path, tmp_path,
                                                 monkeypatch):
    path = str(tiny_model_path.absolute())
    monkeypatch.setitem(batch._models, path, ExtrasModel(real_model))
    sf.write(tmp_path / "a.wav", tone_mix(5.0, seed=7), SR)
    res = batch.analyze_file(tmp_path / "a.wav", options=batch.AnalyzeOptions(model=path))
    assert res.ok, res.error
    s = res.summary
    assert [d["tag"] for d in s["instruments"]] == ["piano", "strings", "drums"]
    assert s["instruments"][0]["score"] == pytest.approx(0.9)
    tagged = [u.tags for u in res.updates if u.tags is not None]
    strings = np.mean([dict(map(tuple, t["instruments"]))["strings"] for t in tagged])
    assert s["instruments"][1]["score"] == pytest.approx(strings, abs=1e-4)
    assert s["genres"] == [{"tag": "classical", "score": 0.8}, {"tag": "jazz", "score": 0.3}]
    out = tmp_path / "o"
    out.mkdir()
    entries = [{"file": "a.wav", "timeline": "a.csv", "plot": None, "error": None,
                "summary": s}]
    csv_path, json_path = batch.write_run_summary(out, entries)
    with open(csv_path, newline="") as f:
        row = next(csv.DictReader(f))
    assert row["instruments"] == f"piano 0.90; strings {strings:.2f}; drums 0.10"
    assert row["genres"] == "classical 0.80; jazz 0.30"
    saved = json.loads(json_path.read_text())["files"][0]
    assert saved["instruments"] == s["instruments"] and saved["genres"] == s["genres"]


def test_genre_map_splits_pop_rock_by_the_teacher_and_adds_ambient():
    from realtime.vocab import GenreMap

    tag_names = ("msd:pop", "msd:rock", "msd:ambient", "msd:dance")
    gm = GenreMap(("pop/rock", "jazz", "electronic", "new age"), tag_names)
    assert gm.names == ("pop", "rock", "jazz", "electronic", "ambient", "new age")
    head = np.array([[0.8, 0.1, 0.3, 0.6], [0.8, 0.1, 0.3, 0.6]])
    tags = np.array([[0.6, 0.2, 0.1, 0.4],    # poppy, danceable
                     [0.1, 0.5, 0.6, 0.05]])  # rock, ambient
    g = dict(zip(gm.names, gm(head, tags).T))
    np.testing.assert_allclose(g["pop"], [0.8, 0.8 * 0.1 / 0.5], rtol=1e-6)  # the likelier side keeps the parent
    np.testing.assert_allclose(g["rock"], [0.8 * 0.2 / 0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(g["ambient"], [0.6 * 0.1 / 0.4, 0.6], rtol=1e-6)  # under new age, its larger parent
    np.testing.assert_allclose(g["jazz"], 0.1)
    # Without the teacher tags nothing is derived, and nothing is lost.
    assert GenreMap(("pop/rock", "jazz"), ()).names == ("pop/rock", "jazz")


def test_instrument_map_takes_the_heads_instruments():
    from realtime.vocab import InstrumentMap

    im = InstrumentMap(("mtt:piano", "mtt:drums"), ("brass", "bass"))
    assert im.names == ("piano", "drums", "brass", "bass")
    s = im(np.array([[0.9, 0.2]]), np.array([[0.3, 0.7]]))
    np.testing.assert_allclose(s, [[0.9, 0.2, 0.3, 0.7]], rtol=1e-6)
    assert np.isnan(im(np.array([[0.9, 0.2]]))[0, 2:]).all()  # head not run: no score, not zero


def test_teacher_instruments_are_calibrated_to_presence_probabilities():
    from realtime.vocab import InstrumentMap

    im = InstrumentMap(("mtt:piano", "mtt:drums"), (), {"drums": (2.0, 1.0)})
    t = np.array([[0.2, 0.2], [0.2, 0.5]])
    s = im(t)
    np.testing.assert_allclose(s[:, 0], [0.2, 0.2], rtol=1e-6)  # no calibration: the tag probability
    logit = np.log(0.2 / 0.8)
    np.testing.assert_allclose(s[:, 1], [1 / (1 + np.exp(-(2 * logit + 1))), 1 / (1 + np.exp(-1.0))], rtol=1e-5)


def test_a_tag_model_with_malformed_calibration_is_refused(tmp_path):
    import onnx

    from realtime.errors import MoodtrackError
    from realtime.model import TagHead, default_model_path

    shipped = MoodModel(default_model_path())
    onx = onnx.load(str(shipped.path.parent / "tags.onnx"))
    for p in onx.metadata_props:
        if p.key == "instrument_calibration":
            p.value = "{not json"
    bad = tmp_path / "tags.onnx"
    bad.write_bytes(onx.SerializeToString())
    with pytest.raises(MoodtrackError, match="instrument_calibration"):
        TagHead(bad, shipped.network)


def test_tag_head_export_is_the_sklearn_heads_probabilities(tmp_path):
    """tools/train_tags.py folds scaler + one-vs-rest logistic regressions into one linear
    layer; the exported graph, read by the runtime's TagHead, gives their probabilities."""
    from realtime.model import TagHead, default_model_path
    from tools.train_tags import export, linear_layer, make_head

    net = MoodModel(default_model_path()).network
    rng = np.random.default_rng(0)
    n_in = net.n_embedding + len(net.tag_names)
    X = rng.standard_normal((400, n_in)).astype(np.float32)
    Yg = (X[:, :3] + 0.3 * rng.standard_normal((400, 3)) > 0).astype(int)
    Yi = (X[:, 5:7] > 0.5).astype(int)
    genres, instruments = make_head().fit(X, Yg), make_head(balanced=False).fit(X, Yi)
    lg, li = linear_layer(genres), linear_layer(instruments)
    layer = (np.hstack([lg[0], li[0]]), np.concatenate([lg[1], li[1]]))
    out = export(layer, tmp_path / "tags.onnx", {"embedding_sha": net.sha, "genre_names": "a,b,c",
                                                 "instrument_names": "brass,bass",
                                                 "instrument_calibration": '{"piano": [0.5, 0.1]}'})
    head = TagHead(out, net)
    assert head.instrument_names == ("brass", "bass") and head.calibration == {"piano": (0.5, 0.1)}
    g, i = head(X[:50, :net.n_embedding], X[:50, net.n_embedding:])
    np.testing.assert_allclose(g, genres.predict_proba(X[:50]), atol=2e-5)
    np.testing.assert_allclose(i, instruments.predict_proba(X[:50]), atol=2e-5)
