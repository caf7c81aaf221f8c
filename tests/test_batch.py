"""analyze at library scale: --jobs and --dask give the plain run's outputs; summaries; plots."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys

import pytest
import soundfile as sf

from realtime import batch, cli
from realtime.mood import MOOD_COLOURS
from realtime.plot import PLOT_COLOURS
from realtime.sinks import CSV_COLUMNS
from realtime.summary import SUMMARY_COLUMNS, summarize
from realtime.timeline import read_timeline
from tests.conftest import SR, tone_mix

#: Columns that depend on when and how fast a run went, not on the audio.
RUN_COLUMNS = ("wall", "latency_ms")
MAGIC = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Three short files of different loudness (one in a subdirectory) and a broken one."""
    d = tmp_path_factory.mktemp("library")
    sf.write(d / "loud.wav", tone_mix(4.0, seed=1), SR)
    (d / "sub").mkdir()
    sf.write(d / "sub" / "quiet.flac", tone_mix(3.0, seed=2) * 0.05, SR)
    sf.write(d / "summary.wav", tone_mix(3.5, seed=3) * 0.3, SR)  # the name analyze keeps
    (d / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    return d


def _analyze(library, out, model, *extra):
    return cli.main(["analyze", str(library), "-o", str(out), "--model", str(model), *extra])


def _timelines(out):
    """{csv name: rows without the run-dependent columns}."""
    keep = [i for i, c in enumerate(CSV_COLUMNS) if c not in RUN_COLUMNS]
    found = {}
    for p in sorted(out.rglob("*.csv")):
        if p.name == "summary.csv":
            continue
        with open(p, newline="") as f:
            rows = list(csv.reader(f))
        assert tuple(rows[0]) == CSV_COLUMNS
        found[p.name] = [[r[i] for i in keep] for r in rows[1:]]
    return found


@pytest.fixture(scope="module")
def plain_run(library, tiny_model_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain")
    assert _analyze(library, out, tiny_model_path, "--plot", "--jobs", "1") == 1  # the broken file
    return out


@pytest.mark.parametrize("cores,files,expect", [({0, 1, 2}, None, 3), ({5}, None, None),
                                                ({0, 1}, "loud.wav", None)])
def test_jobs_default_to_the_cores_available(library, tiny_model_path, tmp_path, monkeypatch,
                                             cores, files, expect):
    """No --jobs: one worker per core this process may use; serial on one core or one file."""
    used = []
    monkeypatch.setattr(batch.os, "sched_getaffinity", lambda pid: cores)
    monkeypatch.setattr(batch, "run_processes",
                        lambda inputs, *, jobs, **kw: used.append(jobs)
                        or batch.run_serial(inputs, **kw))
    serial = batch.run_serial
    monkeypatch.setattr(batch, "run_serial", lambda *a, **kw: used.append(None) or serial(*a, **kw))
    path = library / files if files else library
    assert cli.main(["analyze", str(path), "-o", str(tmp_path), "--model", str(tiny_model_path)]) \
        == (0 if files else 1)
    assert used[0] == expect


def test_plain_run_writes_timelines_plots_and_the_run_summary(plain_run, library):
    names = sorted(str(p.relative_to(plain_run)) for p in plain_run.rglob("*"))
    assert names == ["loud.wav.csv", "loud.wav.png", "manifest.jsonl", "sub", "sub/quiet.flac.csv",
                     "sub/quiet.flac.png", "summary.csv", "summary.json", "summary.wav.csv",
                     "summary.wav.png"]
    assert (plain_run / "loud.wav.png").read_bytes()[:4] == MAGIC["png"]
    with open(plain_run / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    by_file = {r["file"]: r for r in rows}
    assert sorted(by_file) == sorted(str(library / n) for n in (
        "broken.wav", "loud.wav", "sub/quiet.flac", "summary.wav"))
    broken = by_file[str(library / "broken.wav")]
    assert "cannot read audio file" in broken["error"] and broken["duration_s"] == ""
    loud = by_file[str(library / "loud.wav")]
    assert loud["timeline"] == "loud.wav.csv" and loud["error"] == ""
    assert float(loud["duration_s"]) == 4.0 and int(loud["updates"]) == 7  # t = 1, 1.5 .. 4
    seconds = sum(float(loud[f"{m}_s"]) for m in ("uplifting", "tense", "melancholic", "calm",
                                                 "silence"))
    assert seconds == pytest.approx(4.0)
    # The JSON has the same numbers, and they are those of the CSV timeline read back.
    doc = json.loads((plain_run / "summary.json").read_text())
    entry = next(e for e in doc["files"] if e["file"] == str(library / "loud.wav"))
    assert entry["plot"] == "loud.wav.png" and entry["error"] is None
    again = summarize(read_timeline(plain_run / "loud.wav.csv"), duration_s=4.0)
    assert {k: entry[k] for k in again if k != "timeline"} == {
        k: v for k, v in again.items() if k != "timeline"}
    assert float(loud["mean_valence"]) == entry["mean_valence"]


def test_jobs_gives_the_plain_runs_outputs(plain_run, library, tiny_model_path, tmp_path,
                                           capsys):
    out = tmp_path / "jobs"
    assert _analyze(library, out, tiny_model_path, "--plot", "--jobs", "2") == 1
    err = capsys.readouterr().err
    assert "1 of 4 file(s) failed" in err and "broken.wav" in err
    _assert_same_outputs(plain_run, out)


def test_dask_gives_the_plain_runs_outputs(plain_run, library, tiny_model_path, tmp_path,
                                           capsys):
    distributed = pytest.importorskip(
        "distributed", reason="Dask distributed is not installed (pip install 'moodtrack[dask]')")
    out = tmp_path / "dask"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        rc = _analyze(library, out, tiny_model_path, "--plot", "--dask",
                      cluster.scheduler_address)
    err = capsys.readouterr().err
    assert rc == 1 and "1 of 4 file(s) failed" in err and "broken.wav" in err
    _assert_same_outputs(plain_run, out)


def _assert_same_outputs(a, b):
    assert sorted(p.name for p in a.rglob("*")) == sorted(p.name for p in b.rglob("*"))
    ta, tb = _timelines(a), _timelines(b)
    assert ta == tb and len(ta) == 3 and all(ta.values())
    for name in ("summary.csv", "summary.json"):
        assert (a / name).read_text() == (b / name).read_text()
    for png in a.rglob("*.png"):
        assert (b / png.relative_to(a)).read_bytes() == png.read_bytes()


def test_unreachable_dask_scheduler_exits_2(library, tiny_model_path, tmp_path, capsys,
                                            monkeypatch):
    pytest.importorskip("distributed", reason="Dask distributed is not installed")
    monkeypatch.setattr(batch, "DASK_CONNECT_TIMEOUT_S", 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    rc = _analyze(library, tmp_path / "o", tiny_model_path, "--dask", f"tcp://127.0.0.1:{port}")
    err = capsys.readouterr().err
    assert rc == 2 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "0"], "--jobs 0 must be at least 1"),
    (["--plot", "--plot-format", "gif"], "--plot-format gif is not one of png, svg, pdf"),
])
def test_bad_analyze_options_exit_2(library, tiny_model_path, tmp_path, capsys, argv, message):
    assert _analyze(library, tmp_path / "o", tiny_model_path, *argv) == 2
    assert message in capsys.readouterr().err


def test_analyze_file_reports_a_bad_file_and_does_not_raise(tiny_model_path, tmp_path):
    opts = batch.AnalyzeOptions(model=str(tiny_model_path))
    res = batch.analyze_file(tmp_path / "missing.wav", options=opts)
    assert not res.ok and "cannot read audio file" in res.error and str(tmp_path) in res.error


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_plot_command_writes_the_format_of_the_extension(plain_run, tmp_path, capsys, fmt):
    out = tmp_path / f"x.{fmt}"
    assert cli.main(["plot", str(plain_run / "loud.wav.csv"), "-o", str(out)]) == 0, \
        capsys.readouterr().err
    assert out.read_bytes()[:5].startswith(MAGIC[fmt])


def test_plot_command_default_output_and_errors(plain_run, tmp_path, capsys):
    src = tmp_path / "t.csv"
    src.write_bytes((plain_run / "sub" / "quiet.flac.csv").read_bytes())
    assert cli.main(["plot", str(src)]) == 0
    assert (tmp_path / "t.png").read_bytes()[:4] == MAGIC["png"]
    (tmp_path / "t.png").write_bytes(b"mine")  # never replaced without --overwrite
    assert cli.main(["plot", str(src)]) == 2
    assert f"the plot {tmp_path / 't.png'} exists already" in capsys.readouterr().err
    assert (tmp_path / "t.png").read_bytes() == b"mine"
    assert cli.main(["plot", str(src), "--overwrite"]) == 0
    assert (tmp_path / "t.png").read_bytes()[:4] == MAGIC["png"]
    assert cli.main(["plot", str(src), "-o", str(tmp_path / "x.gif")]) == 2
    assert "x.gif: the extension must be one of .png, .svg, .pdf" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,timeline\n")
    assert cli.main(["plot", str(bad)]) == 2
    assert f"timeline {bad} lacks the column(s)" in capsys.readouterr().err
    audio = tmp_path / "song.ogg"
    audio.write_bytes(b"OggS\x00\x02" + bytes(range(256)) * 8)
    assert cli.main(["plot", str(audio)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"moodtrack: error: timeline {audio} is not a CSV text file")
    assert f"moodtrack analyze {audio} -o DIR --plot" in err and "codec" not in err


def test_an_empty_timeline_still_plots(tmp_path):
    from realtime.plot import plot_bytes
    from realtime.timeline import Timeline

    assert plot_bytes(Timeline.from_records([], name="short.wav"))[:4] == MAGIC["png"]


def test_plot_colours_are_the_mood_colours():
    assert PLOT_COLOURS.keys() == MOOD_COLOURS.keys()


def test_live_modes_do_not_load_matplotlib_or_dask():
    code = ("import sys, realtime.cli, realtime.pipeline, realtime.sinks, realtime.batch; "
            "print([m for m in ('matplotlib', 'distributed') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
