"""The speech output of the shipped embedding network: real music vs recorded and synthetic
voices laid over it (none of these voices was trained on), and the tool that refits it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from realtime.embedding import EmbeddingExtractor, EmbeddingNetwork
from realtime.model import MoodModel, default_model_path

SR = 16000
DEMO = Path(__file__).resolve().parent.parent / "realtime" / "data" / "demo.ogg"
ALSA_WORDS = Path("/usr/share/sounds/alsa")  # alsa-utils: a person reading "Front left", ...


def _load(path) -> np.ndarray:
    import soundfile as sf
    import soxr

    y, r = sf.read(str(path), dtype="float32", always_2d=True)
    return soxr.resample(y.mean(axis=1), r, SR).astype(np.float32)


@pytest.fixture(scope="module")
def network() -> EmbeddingNetwork:
    return MoodModel(default_model_path()).network


@pytest.fixture(scope="module")
def demo() -> np.ndarray:
    return _load(DEMO)


def _recorded_words() -> list[np.ndarray]:
    files = sorted(p for p in ALSA_WORDS.glob("*.wav") if p.stem != "Noise")
    assert files, "alsa-utils' recordings are installed by tools/quickstart.sh"
    return [_load(p) for p in files]


def _espeak_lines(tmp: Path) -> list[np.ndarray]:
    out = []
    for voice, text in (("en-gb-scotland", "The convoy leaves at dawn and nobody is to know where it goes."),
                        ("en-029", "Keep your voice down, they can hear us from the corridor.")):
        wav = tmp / f"{voice}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
        out.append(_load(wav))
    return out


def _over(music: np.ndarray, lines: list[np.ndarray], *, db: float = 6.0, gap_s: float = 0.4) -> np.ndarray:
    """``lines`` one after another (``gap_s`` apart) ``db`` dB (RMS while speaking) over ``music``."""
    track, pos, k = np.zeros_like(music), int(0.3 * SR), 0
    while pos < music.size:
        s = lines[k % len(lines)]
        m = min(s.size, music.size - pos)
        track[pos:pos + m] = s[:m]
        pos, k = pos + m + int(gap_s * SR), k + 1
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)))  # noqa: E731
    spoken = track[np.abs(track) > 0.01]
    return music + track / rms(spoken) * rms(music) * 10 ** (db / 20)


def _speech(network, y) -> np.ndarray:
    ups = EmbeddingExtractor(network).process(y)
    return np.array([u.speech for u in ups])[8:]  # once the first patches are full


@pytest.mark.parametrize("offset_s", [0, 40, 75, 110])  # the demo's four pieces
def test_speech_stays_low_on_music_and_rises_under_recorded_and_synthetic_voices(network, demo, offset_s,
                                                                                   tmp_path):
    music = demo[offset_s * SR:(offset_s + 30) * SR]
    alone = _speech(network, music)
    assert alone.mean() <= 0.2
    for voices in (_recorded_words(), _espeak_lines(tmp_path)):
        under = _speech(network, _over(music, voices))
        assert under.mean() >= 0.35 and under.mean() >= alone.mean() + 0.3


def test_refitted_speech_layer_keeps_the_embedding_and_tags_bit_for_bit(network, tmp_path):
    import onnx

    from tools.train_speech import distilled_name, graft, sigmoid, tapped_session

    model_bytes = network.path.read_bytes()
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal(256).astype(np.float32) * 0.05, -0.5
    out = tmp_path / "embedding.onnx"
    out.write_bytes(graft(model_bytes, W, b, {"trained_by": "test"}))
    new = EmbeddingNetwork(out)
    x = rng.uniform(0.0, 3.0, (5, network.patch_frames, 96)).astype(np.float32)
    emb0, tags0, _ = network.run(x)
    emb1, tags1, speech1 = new.run(x)
    assert np.array_equal(emb0, emb1) and np.array_equal(tags0, tags1)
    session = tapped_session(model_bytes)
    distilled, hidden = session.run([distilled_name(model_bytes), "/hidden/hidden.1/Relu_output_0"], {"melspec": x})
    np.testing.assert_allclose(speech1, np.maximum(distilled.reshape(-1), sigmoid(hidden @ W + b)), rtol=1e-5, atol=1e-6)
    # Grafting again replaces the added layer (the distilled one stays as it is).
    again = tmp_path / "again.onnx"
    again.write_bytes(graft(out.read_bytes(), -W, b, {"trained_by": "test"}))
    _, _, speech2 = EmbeddingNetwork(again).run(x)
    np.testing.assert_allclose(speech2, np.maximum(distilled.reshape(-1), sigmoid(-(hidden @ W) + b)), rtol=1e-5, atol=1e-6)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["speech_head"] == '{"trained_by": "test"}' and meta["embedding_version"] == new.metadata["embedding_version"]


def test_recorded_voice_bank_joins_trimmed_lines():
    from tools.voices import _join, _trim

    y = np.r_[np.zeros(100), np.ones(50) * 0.5, np.zeros(30), np.ones(20) * -0.5, np.zeros(100)].astype(np.float32)
    assert _trim(y).size == 100 and _trim(np.zeros(0, np.float32)).size == 0
    rng = np.random.default_rng(0)
    joined = _join([_trim(y), _trim(y)], rng, (0.01, 0.01))
    assert joined.size == 200 + int(0.01 * SR) and np.max(np.abs(joined)) == 1.0


def test_espeak_is_installed():
    assert shutil.which("espeak-ng"), "tools/quickstart.sh installs espeak-ng"


def test_speech_bank_is_made_whole_and_resumes_as_one_run(tmp_path):
    """The synthetic dialogue bank (espeak-ng): every file 16 kHz mono, no temporary file
    left behind, and a bank resumed after a lost file is the bank of one uninterrupted run."""
    import soundfile as sf

    from tools.augment import load_speech_bank, make_speech_bank

    paths = make_speech_bank(tmp_path, split="eval")
    assert len(paths) == 30 and all(p.is_file() for p in paths)
    assert not list((tmp_path / "eval").glob(".*"))
    assert {sf.info(str(p)).samplerate for p in paths} == {SR} and {sf.info(str(p)).channels for p in paths} == {1}
    before = {p.name: p.read_bytes() for p in paths}
    for lost in (paths[4], paths[17]):
        lost.unlink()
    make_speech_bank(tmp_path, split="eval")
    assert {p.name: p.read_bytes() for p in paths} == before
    bank = load_speech_bank(tmp_path, "eval")
    assert len(bank) == 30 and max(float(np.abs(b).max()) for b in bank) == pytest.approx(0.5, abs=1e-3)
