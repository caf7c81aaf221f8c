"""Channel roles and the weighted analysis mix: 5.1 / 7.1, the film-mix preset, config checks."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from realtime import cli
from realtime import config as cfgmod
from realtime.channels import channel_roles, loudness_gains, mix, mix_weights
from realtime.errors import MoodtrackError
from realtime.factory import build_pipeline
from realtime.model import MoodModel
from tests.conftest import SR, tone_mix


def dialogue(seconds, *, sr=SR, seed=0):
    """Speech-like: a voiced buzz (harmonics of a gliding 110-190 Hz pitch) in syllables
    at ~4 Hz, phrases of 1.2 s with 0.5-s pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 150 + 40 * np.sin(2 * np.pi * 0.7 * t) + 10 * rng.standard_normal() * np.sin(9 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    syllables = np.clip(np.sin(2 * np.pi * 4.2 * t), 0, None) ** 0.5
    phrases = (t % 1.7) < 1.2
    return (0.3 * voice * syllables * phrases).astype(np.float32)


def test_roles_by_channel_count():
    assert channel_roles(2) == ("L", "R")
    assert channel_roles(6) == ("L", "R", "C", "LFE", "Ls", "Rs")
    assert channel_roles(8)[6:] == ("Lrs", "Rrs")
    assert channel_roles(3) == ("ch1", "ch2", "ch3")
    np.testing.assert_allclose(loudness_gains(6), [1, 1, 1, 0, 1.41, 1.41])
    np.testing.assert_allclose(loudness_gains(8), [1, 1, 1, 0, 1.41, 1.41, 1.41, 1.41])


def test_mix_weights_by_role_or_number_normalised():
    film = {"C": 0.0, "LFE": 0.0}
    np.testing.assert_allclose(mix_weights(6, film), [0.25, 0.25, 0, 0, 0.25, 0.25])
    np.testing.assert_allclose(mix_weights(8, film), [1 / 6, 1 / 6, 0, 0] + [1 / 6] * 4)
    np.testing.assert_allclose(mix_weights(2, film), [0.5, 0.5])  # stereo: no C, no LFE
    np.testing.assert_allclose(mix_weights(3, {"ch3": 2.0}), [0.25, 0.25, 0.5])
    np.testing.assert_allclose(mix_weights(6, {"C": 0.0, "ch3": 1.0}), [1 / 6] * 6)  # chN wins
    same = np.full((5, 6), 0.3, np.float32)  # identical on every channel: the level stays
    np.testing.assert_allclose(mix(same, mix_weights(6, film)), 0.3, rtol=1e-6)
    with pytest.raises(MoodtrackError, match="weight 0: nothing is left"):
        mix_weights(2, {"L": 0, "R": 0})


@pytest.mark.parametrize("table, message", [
    ({"Centre": 0}, "unknown channel 'Centre'"),
    ({"C": -1}, "the weight of C must be a number >= 0"),
    ({"ch0": 1}, "unknown channel 'ch0'"),
    ({"L": "x"}, "the weight of L must be a number"),
])
def test_bad_channel_weights_name_the_key(tmp_path, table, message):
    path = tmp_path / "c.toml"
    body = ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in table.items())
    path.write_text(f"[input]\nchannel_weights = {{ {body} }}\n")
    with pytest.raises(MoodtrackError, match="input.channel_weights") as e:
        cfgmod.load(path)
    assert message in str(e.value)


def test_film_mix_preset_leaves_out_centre_and_lfe():
    cfg = cfgmod.load("film-mix")
    assert cfg["input"]["channel_weights"] == {"C": 0.0, "LFE": 0.0}
    assert cfg["output"]["dashboard_level"] == "lufs"
    assert cfgmod.defaults()["input"]["channel_weights"] == {}


def test_5_1_score_with_dialogue_on_c_analyses_as_the_stereo_score(tiny_model_path):
    """A 5.1 bus, score on L R Ls Rs and dialogue on C (plus an LFE rumble): with the
    film-mix weights the analysis mix is the stereo score's mix, so are the updates."""
    score = tone_mix(6.0, seed=2)
    left, right = score, np.roll(score, 300) * 0.8
    lfe = (0.3 * np.sin(2 * np.pi * 40 * np.arange(score.size) / SR)).astype(np.float32)
    bus = np.stack([left, right, dialogue(6.0), lfe, left, right], axis=1)
    stereo = np.stack([left, right], axis=1)
    w = mix_weights(6, cfgmod.load("film-mix")["input"]["channel_weights"])
    np.testing.assert_allclose(mix(bus, w), mix(stereo), atol=1e-6)

    model = MoodModel(tiny_model_path)

    def run(cfg, x):
        p = build_pipeline(cfg, model=model)
        out = []
        for i in range(0, len(x), 4096):
            out += p.push(x[i:i + 4096], sample_rate=SR)
        out += p.finish()
        return np.array([(u.valence, u.arousal, u.level_db) for u in out])

    film, plain = cfgmod.load("film-mix"), cfgmod.defaults()
    np.testing.assert_allclose(run(film, bus), run(film, stereo), atol=1e-5)
    assert np.abs(run(plain, bus) - run(plain, stereo)).max() > 1e-2  # all six: it moves


def test_analyze_uses_the_channel_weights_of_the_config(tiny_model_path, tmp_path, capsys):
    score = tone_mix(4.0, seed=4)
    bus = np.stack([score, score, dialogue(4.0), np.zeros_like(score), score, score], axis=1)
    sf.write(tmp_path / "bus.wav", bus, SR)
    sf.write(tmp_path / "score.wav", score, SR)
    assert cli.main(["analyze", str(tmp_path / "bus.wav"), str(tmp_path / "score.wav"),
                     "-o", str(tmp_path / "o"), "--config", "film-mix",
                     "--model", str(tiny_model_path)]) == 0, capsys.readouterr().err

    def rows(name):
        with open(tmp_path / "o" / name, newline="") as f:
            return [(r["valence"], r["arousal"], r["level_db"]) for r in csv.DictReader(f)]

    assert rows("bus.wav.csv") == rows("score.wav.csv") and len(rows("bus.wav.csv")) == 4


def test_a_channel_count_change_within_a_stream_is_an_error(tiny_model_path):
    p = build_pipeline(cfgmod.defaults(), model=MoodModel(tiny_model_path))
    p.push(np.zeros((1000, 2), np.float32), sample_rate=SR)
    with pytest.raises(MoodtrackError, match="input channels changed from 2 to 1 within one"):
        p.push(np.zeros(1000, np.float32), sample_rate=SR)
