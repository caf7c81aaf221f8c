"""Bad and odd input files: each gets a clear message naming the file (never a traceback),
odd-but-valid audio is analysed with finite results, and one bad file stops nothing else.
The decoder boundary is fuzzed for a bounded time."""

from __future__ import annotations

import csv
import math
import struct

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime import cli
from realtime.errors import MoodtrackError
from realtime.sinks import CSV_COLUMNS
from realtime.sources import FileSource
from tests.conftest import SR, tone_mix


def _wav_header(fmt_tag: int, channels: int, rate: int, bits: int, data: bytes) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _music(seconds: float, sr: int = SR) -> np.ndarray:
    y = tone_mix(seconds, seed=3)
    if sr != SR:
        import soxr

        y = soxr.resample(y, SR, sr).astype(np.float32)
    return y


#: name -> None (must fail with a message matching the pattern in BAD) or a check.
def _make_files(d):
    y = _music(4.0)
    files = {}

    def write(name, data, sr=SR, **kw):
        sf.write(d / name, data, sr, **kw)
        files[name] = d / name

    # Bad: each must fail, naming itself.
    (d / "empty.wav").write_bytes(b"")
    (d / "not_audio.wav").write_text("just some text, not audio at all\n" * 20)
    (d / "picture.flac").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (d / "codec.wav").write_bytes(_wav_header(0x0161, 2, 44100, 16, b"\xff\xfb" * 4000))  # WMA-in-WAV
    write("zero_samples.wav", np.zeros(0, np.float32))
    sf.write(d / "whole.ogg", y, SR)
    blob = (d / "whole.ogg").read_bytes()
    (d / "truncated.ogg").write_bytes(blob[: len(blob) // 2])  # cut mid-stream
    (d / "whole.ogg").unlink()
    sf.write(d / "whole.flac", y, SR)
    blob = bytearray((d / "whole.flac").read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(len(blob) // 3, len(blob), 200):  # corrupt frames mid-file
        blob[i] ^= 0xFF
    (d / "corrupt.flac").write_bytes(bytes(blob))
    (d / "whole.flac").unlink()
    # A WAV whose header promises more data than the file holds.
    pcm = (y * 20000).astype("<i2").tobytes()
    (d / "short_data.wav").write_bytes(_wav_header(1, 1, SR, 16, pcm)[: 44 + len(pcm) // 2])

    # Odd but valid: each must be analysed.
    write("one_sample.wav", np.array([0.5], np.float32))
    write("eight_channels.wav", np.stack([y * (k + 1) / 10 for k in range(8)], axis=1))
    write("rate_8k.wav", _music(4.0, 8000), 8000)
    write("rate_192k.flac", _music(4.0, 192000), 192000, subtype="PCM_24")
    write("int8.aiff", y, subtype="PCM_S8")
    write("uint8.wav", y, subtype="PCM_U8")
    write("int16.wav", y, subtype="PCM_16")
    write("int32.wav", y, subtype="PCM_32")
    write("float.wav", y, subtype="FLOAT")
    write("double.wav", y, subtype="DOUBLE")
    bad = y.copy()
    bad[1000:1100] = np.nan
    bad[5000:5010] = np.inf
    bad[9000] = -np.inf
    bad[20000:30000] = np.nan  # a long run of garbage
    write("nan_inf.wav", bad, subtype="FLOAT")
    write("huge_floats.wav", y * 1e30, subtype="FLOAT")
    write("dc_offset.wav", 0.5 + 0.3 * y, subtype="PCM_16")
    write("clipping.wav", np.clip(8 * y, -1, 1), subtype="PCM_16")
    write("silence.flac", np.zeros(SR * 180, np.float32))  # minutes of digital silence
    return d


BAD = {
    "empty.wav": r"empty.wav: it is empty \(0 bytes\)",
    "not_audio.wav": "not_audio.wav: Format not recognised.*is it audio",
    "picture.flac": "picture.flac: Format not recognised.*is it audio",
    "codec.wav": "codec.wav: .*is it audio",
    "zero_samples.wav": r"zero_samples.wav contains no audio \(0 samples",
    "truncated.ogg": "truncated.ogg",
    "corrupt.flac": "corrupt.flac",
}


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory):
    return _make_files(tmp_path_factory.mktemp("odd"))


def _rows(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS and all(len(r) == len(CSV_COLUMNS) for r in rows)
    return [dict(zip(CSV_COLUMNS, r)) for r in rows[1:]]


def test_analyze_reports_each_bad_file_and_analyses_the_rest(odd_files, tmp_path, capsys,
                                                             tiny_model_path):
    import re

    out = tmp_path / "out"
    rc = cli.main(["analyze", str(odd_files), "-o", str(out), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    blocks = dict(re.findall(r"^moodtrack analyze: \d+ (?:of \d+ )?file\(s\) (failed|truncated)"
                             r".*:\n((?:  .*\n)*)", err, flags=re.M))
    failed = dict(re.findall(r"^  (\S+): (.*)$", blocks["failed"], flags=re.M))
    failed = {k.rsplit("/", 1)[-1]: v for k, v in failed.items()}
    # Files that end before their header says: analysed up to there, with a warning.
    truncated = dict(re.findall(r"^  (\S+): (.*)$", blocks["truncated"], flags=re.M))
    truncated = {k.rsplit("/", 1)[-1]: v for k, v in truncated.items()}
    assert truncated["short_data.wav"] == "truncated: decoded 2.0 of 4.0 s", err
    assert set(truncated) <= {"short_data.wav", "truncated.ogg"}, err
    # Truncated or corrupt streams may decode up to the damage: then they are analysed.
    must_fail = set(BAD) - {"truncated.ogg", "corrupt.flac"}
    assert must_fail <= set(failed), err
    assert set(failed) <= set(BAD), err
    for name, why in failed.items():
        assert re.search(BAD[name], f"{name}: {why}"), why
        assert "cannot" in why or "no audio" in why
    assert rc == 1
    made = {p.name for p in out.iterdir()}
    for f in odd_files.iterdir():
        if f.name in failed:
            assert f"{f.name}.csv" not in made  # a failed file leaves no CSV
            continue
        rows = _rows(out / f"{f.name}.csv")
        for r in rows:
            for k in ("valence", "arousal", "confidence", "level_db", "t"):
                assert math.isfinite(float(r[k])), (f.name, r)
            assert -1 <= float(r["valence"]) <= 1 and -1 <= float(r["arousal"]) <= 1
        if f.name == "one_sample.wav":
            assert rows == []
        elif f.name == "silence.flac":
            assert len(rows) == 359 and all(r["mood"] == "silence" for r in rows)
        elif f.name in ("truncated.ogg", "corrupt.flac"):
            pass
        elif f.name == "short_data.wav":  # analysed up to where its data ends
            assert len(rows) == 3
        else:
            assert len(rows) == 7, f.name  # 4 s at 2 updates/s from t = 1 s


def test_nonfinite_samples_are_counted_not_analysed(odd_files, tiny_model_path):
    from realtime.model import MoodModel
    from realtime.pipeline import Pipeline
    from realtime.stats import PipelineStats

    stats = PipelineStats()
    pipe = Pipeline(MoodModel(tiny_model_path), stats=stats)
    with FileSource(odd_files / "nan_inf.wav") as src:
        updates = pipe.run(src)
    assert updates == 7 and stats.nonfinite_samples == 100 + 10 + 1 + 10000


def test_live_file_with_bad_audio_exits_2_naming_it(odd_files, capsys, tiny_model_path):
    for name in ("not_audio.wav", "codec.wav", "zero_samples.wav"):
        rc = cli.main(["live", "--file", str(odd_files / name), "--no-zmq",
                       "--model", str(tiny_model_path)])
        err = capsys.readouterr().err
        assert rc == 2 and name in err and "Traceback" not in err, err


# ------------------------------------------------------------------------------ fuzz
_SEEDS = {}


def _seed(kind: str) -> bytes:
    if kind not in _SEEDS:
        import io

        buf = io.BytesIO()
        fmt = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
               "wavf": ("WAV", "FLOAT")}[kind]
        sf.write(buf, _music(1.2, 8000), 8000, format=fmt[0], subtype=fmt[1])
        _SEEDS[kind] = buf.getvalue()
    return _SEEDS[kind]


@st.composite
def mutated_audio(draw):
    kind = draw(st.sampled_from(["wav", "flac", "ogg", "wavf", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=4096)), kind
    data = bytearray(_seed(kind))
    for _ in range(draw(st.integers(0, 12))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data), kind


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutated_audio())
def test_fuzz_decoder_boundary_only_moodtrack_errors(case, tmp_path, fuzz_model):
    """Whatever the bytes, a file either analyses to finite updates or raises a
    MoodtrackError naming it."""
    from realtime.pipeline import Pipeline

    data, kind = case
    path = tmp_path / f"fuzz.{kind[:4]}"
    path.write_bytes(data)
    try:
        with FileSource(path, blocksize=4096) as src:
            pipe = Pipeline(fuzz_model, update_hz=4.0)
            pipe.run(src, seconds=30.0)
    except MoodtrackError as exc:
        assert str(path) in str(exc)


@pytest.fixture(scope="module")
def fuzz_model(tiny_model_path):
    from realtime.model import MoodModel

    return MoodModel(tiny_model_path)
