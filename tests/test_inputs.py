"""Inputs a user controls (issue 16): only regular files are opened, and every file or
folder skipped is named with why -- through the real command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf

from tests.conftest import SR, run_moodtrack, tone_mix

def test_a_fifo_is_named_and_skipped_never_opened_for_reading(tiny_model_path, tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    sf.write(tmp_path / "good.wav", tone_mix(2.0), SR)
    out = tmp_path / "out"
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", fifo, tmp_path / "good.wav", "-o", out)
    assert p.returncode == 1, p.stderr  # it would hang forever if the FIFO were opened
    assert f"{fifo}: cannot read audio file {fifo}: it is a FIFO (named pipe), not a regular " \
           "file" in p.stderr
    assert (out / "good.wav.csv").is_file()
    p = run_moodtrack(tiny_model_path, "live", "--file", fifo, "--no-zmq", "--no-dashboard")
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        f"moodtrack: error: cannot read audio file {fifo}: it is a FIFO (named pipe), not a "
        "regular file")
    p = run_moodtrack(tiny_model_path, "live", "--file", "/dev/null", "--no-zmq")
    assert p.returncode == 2 and "/dev/null: it is a character device" in p.stderr, p.stderr


def _cut(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def test_truncated_files_are_analysed_up_to_the_damage_with_a_warning(tiny_model_path,
                                                                      tmp_path):
    import json

    lib = tmp_path / "lib"
    lib.mkdir()
    y = tone_mix(6.0)
    for name, fmt in (("cut.wav", "WAV"), ("cut.mp3", "MP3"), ("cut.ogg", "OGG"),
                      ("whole.mp3", "MP3"), ("whole.ogg", "OGG")):
        sf.write(lib / name, y, SR, format=fmt)
    for name in ("cut.wav", "cut.mp3", "cut.ogg"):
        _cut(lib / name, 0.5)
    out = tmp_path / "out"
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", lib, "-o", out)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr and "Xing" not in p.stderr  # decoder chatter kept out
    assert "3 file(s) truncated" in p.stderr and "failed" not in p.stderr
    files = {Path(e["file"]).name: e for e in json.loads((out / "summary.json").read_text())[
        "files"]}
    assert files["cut.wav"]["warning"] == "truncated: decoded 3.0 of 6.0 s"
    assert files["cut.mp3"]["warning"].startswith("truncated: decoded ") and \
        files["cut.mp3"]["warning"].endswith(" of 6.0 s")
    assert files["cut.ogg"]["warning"].startswith("truncated: decoded ")
    assert "warning" not in files["whole.mp3"] and "warning" not in files["whole.ogg"]
    assert files["cut.wav"]["updates"] in (4, 5) and files["whole.ogg"]["updates"] == 11
    with open(out / "summary.csv") as f:
        rows = {Path(r["file"]).name: r for r in __import__("csv").DictReader(f)}
    assert rows["cut.wav"]["warning"] == "truncated: decoded 3.0 of 6.0 s"
    assert rows["whole.mp3"]["warning"] == ""
    p = run_moodtrack(tiny_model_path, "live", "--file", lib / "cut.wav", "--no-zmq",
                   "--no-dashboard")
    assert p.returncode == 0
    assert f"moodtrack: warning: {lib / 'cut.wav'}: truncated: decoded 3.0 of 6.0 s" in p.stderr


def test_every_skipped_folder_and_file_is_named(tiny_model_path, tmp_path, monkeypatch, capsys):
    from realtime import cli

    lib = tmp_path / "lib"
    (lib / "locked").mkdir(parents=True)
    sf.write(lib / "locked" / "hidden.wav", tone_mix(2.0), SR)
    sf.write(lib / "a.wav", tone_mix(2.0), SR)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sf.write(elsewhere / "b.wav", tone_mix(2.0), SR)
    (lib / "linked").symlink_to(elsewhere)
    (lib / "gone.wav").symlink_to(tmp_path / "nothing.wav")
    os.mkfifo(lib / "pipe.flac")
    (lib / "locked").chmod(0)
    if os.access(lib / "locked", os.R_OK):  # root reads anything: refuse as the kernel would
        real = os.scandir

        def scandir(path):
            if Path(path) == lib / "locked":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        rc = cli.main(["analyze", str(lib), "-o", str(tmp_path / "out"), "--jobs", "1",
                       "--model", str(tiny_model_path)])
    finally:
        (lib / "locked").chmod(0o755)
    err = capsys.readouterr().err
    assert rc == 1, err  # the library was not read whole
    for path, why in ((lib / "linked", "a link to a folder, not followed"),
                      (lib / "gone.wav", "a broken link"),
                      (lib / "pipe.flac", "a FIFO (named pipe), not a regular file"),
                      (lib / "locked", "cannot list this folder: Permission denied")):
        assert f"moodtrack analyze: skipped {path}: {why}" in err
    assert "1 folder(s) or file(s) could not be read" in err
    assert (tmp_path / "out" / "a.wav.csv").is_file()


def test_an_unwritable_output_folder_is_refused_before_any_work(tiny_model_path, tmp_path):
    ro = Path("/sys/kernel")  # a folder nobody, root included, may create files in
    try:
        os.close(os.open(ro / "moodtrack-probe", os.O_CREAT | os.O_WRONLY, 0o600))
        os.remove(ro / "moodtrack-probe")
        pytest.skip(f"{ro} is writable here")
    except OSError:
        pass
    sf.write(tmp_path / "a.wav", tone_mix(30.0), SR)
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", tmp_path / "a.wav", "-o", ro)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(
        f"moodtrack: error: cannot write to the output directory {ro}: ")
    assert "ok " not in p.stderr and "a.wav" not in p.stderr
