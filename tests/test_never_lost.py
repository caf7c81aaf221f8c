"""Nothing lost, nothing overwritten (issue 16): the real command, real files, a real kill -9.

- no output is ever written over an input or the model (symlinks and hard links included);
- an existing CSV is replaced only with --overwrite;
- analyze writes each file whole under its final name (temporary name + rename), names
  outputs by the input's path, resumes from its manifest and never replaces what it did
  not write;
- a failed summary write leaves the previous summary whole.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from realtime import cli, outputs
from realtime.sinks import CSV_COLUMNS
from tests.conftest import SR, run_moodtrack, tone_mix

ROOT = Path(__file__).resolve().parent.parent
RUN_COLUMNS = ("wall", "latency_ms")


def _env(model):
    return {**os.environ, "MOODTRACK_MODEL": str(model), "PYTHONPATH": str(ROOT)}


def _rows(path) -> list[list[str]]:
    """A timeline's rows without the columns that depend on the run's timing."""
    keep = [i for i, c in enumerate(CSV_COLUMNS) if c not in RUN_COLUMNS]
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    return [[r[i] for i in keep] for r in rows[1:]]


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("input") / "v.wav"
    sf.write(path, tone_mix(4.0, seed=3), SR)
    return path


# ------------------------------------------------------------------ live --csv
def test_live_csv_never_writes_over_the_input_or_the_model(tiny_model_path, wav, tmp_path):
    original = wav.read_bytes()
    (tmp_path / "link.csv").symlink_to(wav)
    os.link(wav, tmp_path / "hard.csv")
    for target in (wav, tmp_path / "link.csv", tmp_path / "hard.csv"):
        for extra in ((), ("--overwrite",)):
            p = run_moodtrack(tiny_model_path, "live", "--file", wav, "--csv", target,
                           "--no-dashboard", "--no-zmq", "--seconds", "3", *extra)
            assert p.returncode == 2, p.stderr
            assert f"--csv {target} is the input audio file {wav}" in p.stderr
            assert "Traceback" not in p.stderr
    p = run_moodtrack(tiny_model_path, "demo", "--csv", tiny_model_path, "--overwrite", "--no-zmq",
                   "--seconds", "1")
    assert p.returncode == 2 and "is the model" in p.stderr, p.stderr
    assert wav.read_bytes() == original


def test_an_existing_csv_is_replaced_only_with_overwrite(tiny_model_path, wav, tmp_path):
    mine = tmp_path / "mine.csv"
    mine.write_text("my notes\n")
    p = run_moodtrack(tiny_model_path, "demo", "--csv", mine, "--no-zmq", "--seconds", "1")
    assert p.returncode == 2, p.stderr
    assert f"the CSV timeline {mine} exists already" in p.stderr and "--overwrite" in p.stderr
    assert mine.read_text() == "my notes\n"
    p = run_moodtrack(tiny_model_path, "live", "--file", wav, "--csv", mine, "--overwrite",
                   "--no-zmq", "--seconds", "2")
    assert p.returncode == 0, p.stderr
    assert len(_rows(mine)) == 3  # t = 1, 1.5, 2


def test_analyze_never_writes_over_its_input(tiny_model_path, tmp_path):
    take = tmp_path / "take.csv"  # an audio file with a .csv name
    sf.write(take, tone_mix(3.0), SR, format="WAV")
    original = take.read_bytes()
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", take.name, "-o", ".", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert take.read_bytes() == original
    assert len(_rows(tmp_path / "take.csv.csv")) == 5
    # An input where the run's own files go is refused before any work.
    summary = tmp_path / "o" / "summary.json"
    summary.parent.mkdir()
    sf.write(summary, tone_mix(2.0), SR, format="WAV")
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", summary, "-o", summary.parent)
    assert p.returncode == 2 and "is the input audio file" in p.stderr, p.stderr
    assert sf.info(str(summary)).duration == 2.0


# ------------------------------------------------------------ analyze: resume, names
def _library(d: Path, names, seconds=3.0) -> Path:
    for k, n in enumerate(names):
        (d / n).parent.mkdir(parents=True, exist_ok=True)
        sf.write(d / n, tone_mix(seconds, seed=k) * (0.1 + 0.2 * k), SR)
    return d


def _summary_files(out: Path) -> dict[str, dict]:
    doc = json.loads((out / "summary.json").read_text())
    return {Path(e["file"]).name: e for e in doc["files"]}


def test_analyze_resumes_names_by_path_and_keeps_earlier_results(tiny_model_path, tmp_path):
    lib = _library(tmp_path / "lib", ["a.wav", "a.flac", "sub/b.wav"])
    other = _library(tmp_path / "other", ["c.wav"])
    out = tmp_path / "out"
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", lib, "-o", out)
    assert p.returncode == 0, p.stderr
    made = {str(q.relative_to(out)): q.stat().st_mtime_ns for q in out.rglob("*.csv")}
    assert sorted(made) == ["a.flac.csv", "a.wav.csv", "sub/b.wav.csv", "summary.csv"]

    # The same run again: everything is up to date, nothing is analysed or rewritten.
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", lib, "-o", out)
    assert p.returncode == 0, p.stderr
    assert "3 up to date, kept" in p.stderr and "0/0 files" in p.stderr
    for name, mtime in made.items():
        if name != "summary.csv":
            assert (out / name).stat().st_mtime_ns == mtime

    # Other inputs into the same DIR: new names, the earlier timelines and their summary stay.
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", other, "-o", out)
    assert p.returncode == 0, p.stderr
    assert (out / "c.wav.csv").is_file()
    assert sorted(_summary_files(out)) == ["a.flac", "a.wav", "b.wav", "c.wav"]

    # A changed input is analysed again; the others are kept.
    sf.write(lib / "a.wav", tone_mix(4.0, seed=9), SR)
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", lib, "-o", out)
    assert p.returncode == 0, p.stderr
    assert "2 up to date, kept" in p.stderr and "1 out of date" in p.stderr
    assert len(_rows(out / "a.wav.csv")) == 7 and (out / "a.flac.csv").stat().st_mtime_ns == \
        made["a.flac.csv"]
    assert _summary_files(out)["a.wav"]["duration_s"] == 4.0

    # A file the manifest does not record for this input is never replaced silently...
    (out / "x.wav.csv").write_text("someone else's\n")
    sf.write(tmp_path / "x.wav", tone_mix(2.0), SR)
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", tmp_path / "x.wav", "-o", out)
    assert p.returncode == 2, p.stderr
    assert "holds 1 file(s) this run would replace" in p.stderr and "x.wav.csv" in p.stderr
    assert (out / "x.wav.csv").read_text() == "someone else's\n"
    # ... only with --overwrite, which also analyses up-to-date files again.
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", tmp_path / "x.wav", lib, "-o", out, "--overwrite")
    assert p.returncode == 0, p.stderr
    assert len(_rows(out / "x.wav.csv")) == 3 and "4/4 files" in p.stderr


def test_an_earlier_summary_that_no_run_recorded_is_not_replaced(tiny_model_path, tmp_path):
    lib = _library(tmp_path / "lib", ["a.wav"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("mine\n")
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", lib, "-o", out)
    assert p.returncode == 2 and "summary.csv" in p.stderr, p.stderr
    assert (out / "summary.csv").read_text() == "mine\n"


def test_a_second_run_into_the_same_dir_is_refused_while_one_runs(tiny_model_path, tmp_path):
    import fcntl

    lib = _library(tmp_path / "lib", ["a.wav"])
    out = tmp_path / "out"
    out.mkdir()
    with open(out / outputs.MANIFEST, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", lib, "-o", out)
    assert p.returncode == 2 and "another 'moodtrack analyze' is writing to" in p.stderr
    assert not (out / "a.wav.csv").exists()


def test_kill_9_leaves_only_whole_timelines_and_the_next_run_resumes(tiny_model_path, tmp_path):
    names = [f"t{k}.wav" for k in range(8)]
    lib = _library(tmp_path / "lib", names, seconds=12.0)
    ref = tmp_path / "ref"
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", lib, "-o", ref, "--rate", "20")
    assert p.returncode == 0, p.stderr
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "analyze", str(lib), "-o", str(out),
                             "--rate", "20", "--jobs", "1"], cwd=ROOT, env=_env(tiny_model_path),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "t1.wav.csv").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    done = sorted(q.name for q in out.glob("t*.csv"))
    assert 2 <= len(done) < len(names), done
    for name in done:  # every file with a final name is whole
        assert _rows(out / name) == _rows(ref / name), name
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", lib, "-o", out, "--rate", "20")
    assert p.returncode == 0, p.stderr
    assert f"{len(done)} up to date, kept" in p.stderr
    assert not [q.name for q in out.iterdir() if q.name.startswith(".")]  # leftovers removed
    for name in (f"{n}.csv" for n in names):
        assert _rows(out / name) == _rows(ref / name), name
    assert sorted(_summary_files(out)) == sorted(Path(n).stem + ".wav" for n in names)


def test_a_full_disk_while_the_summary_is_written_keeps_the_previous_one(
        tiny_model_path, tmp_path, monkeypatch, capsys):
    lib = _library(tmp_path / "lib", ["a.wav", "b.wav"])
    out = tmp_path / "out"
    assert cli.main(["analyze", "-j", "1", str(lib / "a.wav"), "-o", str(out),
                     "--model", str(tiny_model_path)]) == 0
    before = {n: (out / n).read_bytes() for n in ("summary.csv", "summary.json")}
    real = outputs._write_all

    def full_for_summaries(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1].startswith(".summary."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(outputs, "_write_all", full_for_summaries)
    capsys.readouterr()
    rc = cli.main(["analyze", "-j", "1", str(lib), "-o", str(out), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot write the run summary in" in err
    assert "No space left on device" in err and "--csv" not in err
    assert {n: (out / n).read_bytes() for n in before} == before  # whole, as they were
    assert not [q.name for q in out.iterdir() if q.name.startswith(".")]
    # The timeline made before the failure is recorded: the next run only writes the summary.
    monkeypatch.setattr(outputs, "_write_all", real)
    assert cli.main(["analyze", "-j", "1", str(lib), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    assert "2 up to date, kept" in capsys.readouterr().err
    assert sorted(_summary_files(out)) == ["a.wav", "b.wav"]


def test_file_names_that_are_not_utf8_reach_the_summary(tiny_model_path, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    bad = os.fsdecode(b"bad\xff.wav")
    sf.write(os.fsencode(lib / bad), tone_mix(3.0), SR)
    out = tmp_path / "out"
    p = run_moodtrack(tiny_model_path, "analyze", "-j", "1", lib, "-o", out)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert os.path.isfile(os.fsencode(out / bad) + b".csv")
    rows = list(csv.DictReader((out / "summary.csv").read_text(encoding="utf-8").splitlines()))
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == ["bad\\xff.wav"]
    assert rows[0]["timeline"] == "bad\\xff.wav.csv" and int(rows[0]["updates"]) == 5
    (entry,) = json.loads((out / "summary.json").read_text(encoding="utf-8"))["files"]
    assert entry["file"].endswith("bad\\xff.wav") and entry["updates"] == 5
