"""The pipeline factory: one Config -> one Pipeline, the same in the live modes and analyze."""

from __future__ import annotations

import csv

import pytest
import soundfile as sf

from realtime import batch, cli
from realtime import config as cfgmod
from realtime.factory import build_pipeline
from realtime.model import MoodModel
from realtime.stats import PipelineStats
from tests.conftest import SR, tone_mix

#: Every analysis key away from its default, so a mode that ignored one would differ.
CONFIG = """
[analysis]
update_hz = 4.0
smoothing_s = 5.0
silence_db = -30.0

[lighting]
palette = "colorblind"
brightness = "fixed"
smoothing_s = 3.0
"""


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return MoodModel(tiny_model_path)


def test_build_pipeline_takes_the_analysis_and_colour_keys_from_the_config(model, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    cfg = cfgmod.load(path)
    stats, sink = PipelineStats(), object()
    p = build_pipeline(cfg, model=model, sinks=[sink], stats=stats)
    assert p.extractor.update_hz == 4.0
    assert p.estimator.smoothing_s == 5.0 and p.estimator.silence_db == -30.0
    assert (p.colour.palette, p.colour.brightness, p.colour.smoothing_s) == \
        ("colorblind", "fixed", 3.0)
    assert p.sinks == [sink] and p.stats is stats
    d = build_pipeline(cfgmod.defaults(), model=model)
    assert d.extractor.update_hz == 2.0 and d.estimator.smoothing_s == 2.0
    assert d is not p and isinstance(d.stats, PipelineStats)


def _rows(path):
    with open(path, newline="") as f:
        return [{k: r[k] for k in ("t", "valence", "arousal", "quadrant", "mood", "confidence",
                                   "level_db", "silence")} for r in csv.DictReader(f)]


def test_live_and_analyze_give_the_same_timeline_for_the_same_config(tiny_model_path, tmp_path,
                                                                     capsys):
    """``live --file`` (paced, capture queue, analysis thread) and ``analyze`` (unpaced,
    large blocks, maybe another process) build their pipeline from the same keys."""
    conf = tmp_path / "c.toml"
    conf.write_text(CONFIG)
    y = tone_mix(3.0, seed=5)
    y[SR:2 * SR] *= 0.01  # a quiet second: below silence_db = -30 only
    sf.write(tmp_path / "a.wav", y, SR)
    run = ["--config", str(conf), "--model", str(tiny_model_path)]
    assert cli.main(["live", "--file", str(tmp_path / "a.wav"), "--csv", str(tmp_path / "live.csv"),
                     "--no-zmq", "--no-dashboard", *run]) == 0, capsys.readouterr().err
    assert cli.main(["analyze", str(tmp_path / "a.wav"), "-o", str(tmp_path / "o"), *run]) == 0
    live, ana = _rows(tmp_path / "live.csv"), _rows(tmp_path / "o" / "a.wav.csv")
    assert [float(r["t"]) for r in ana] == pytest.approx([1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5,
                                                          2.75, 3.0])
    assert any(r["silence"] == "1" for r in ana) and any(r["silence"] == "0" for r in ana)
    assert live == ana
