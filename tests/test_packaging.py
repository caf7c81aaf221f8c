"""The built wheel carries everything moodtrack needs at run time.

The wheel is built from a copy of the working tree (no stale ``build/``), installed with
``--no-deps`` into a new virtual environment outside the source tree, and run from another
directory with the source tree out of reach. The new environment borrows the third-party
packages (numpy, onnxruntime...) of the one running the tests through a ``.pth`` line, so
nothing is downloaded; moodtrack itself, its model, presets, filterbanks and demo can only
come from the wheel.
"""

from __future__ import annotations

import ast
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from realtime import __version__

ROOT = Path(__file__).resolve().parent.parent
#: Ignored by git, never part of a build (used when the tree is not a git checkout).
_NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
               "node_modules", "cache", "out", "*.csv")


def _copy_tree(dst: Path) -> Path:
    """The working tree's files (tracked and untracked, not ignored) copied to ``dst``."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        return dst
    for rel in filter(None, listed.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    return dst


def _env() -> dict:
    """The environment of a user's shell: no source tree on the path, no model override."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MOODTRACK_MODEL", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, run directory, wheel) with the wheel installed in a fresh venv."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = _copy_tree(tmp / "src")
    dist = tmp / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                            "--no-build-isolation", "-q", "-w", str(dist), str(src)],
                           cwd=tmp, env=_env(), capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("moodtrack-*.whl")

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    # The dependencies: this environment's site-packages, as plain path entries (its .pth
    # files, such as an editable install's finder, are not run from there).
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                *site.getsitepackages()}
    Path(purelib, "_moodtrack_test_deps.pth").write_text(
        "".join(f"{p}\n" for p in sorted(borrowed) if Path(p).is_dir()))
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install",
                           "--no-deps", "--no-index", "-q", str(wheel)],
                          cwd=tmp, env=_env(), capture_output=True, text=True, timeout=120)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    shutil.rmtree(src)  # the copy it was built from is gone too
    run_dir = tmp / "elsewhere"
    run_dir.mkdir()
    return venv, run_dir, wheel


def _run(installed, *args, timeout=60):
    venv, run_dir, _ = installed
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=run_dir, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_wheel_carries_models_presets_filterbanks_and_demo(installed):
    names = set(zipfile.ZipFile(installed[2]).namelist())
    want = {f"realtime/models/{p.name}" for p in (ROOT / "models").glob("*.onnx")}
    want |= {"realtime/models/MODEL.md", "realtime/data/demo.ogg",
             "realtime/data/DEMO_SOURCE.md"}
    want |= {f"realtime/configs/{p.name}" for p in (ROOT / "configs").glob("*.toml")}
    want |= {f"realtime/data/{p.name}" for p in (ROOT / "realtime" / "data").glob("*.npz")}
    assert "realtime/models/mood.onnx" in want and "realtime/configs/lighting.toml" in want
    assert want <= names, sorted(want - names)
    assert not any(n.startswith(("tests/", "tools/", "models/", "configs/")) for n in names)


def test_installed_package_runs_from_another_directory(installed):
    venv = installed[0]
    where = _run(installed, "python", "-c",
                 "import realtime, sys; print(realtime.__file__); print(repr(sys.path))")
    assert where.returncode == 0, where.stderr
    module, path = where.stdout.splitlines()
    assert Path(module).resolve().is_relative_to(venv.resolve())
    assert not {str(ROOT), str(ROOT / "realtime")} & set(ast.literal_eval(path))

    version = _run(installed, "moodtrack", "--version")
    assert version.returncode == 0, version.stderr
    lines = version.stdout.splitlines()
    assert lines[0] == f"moodtrack {__version__}"
    assert lines[1].startswith("model: ") and " version " in lines[1]
    model_path = Path(lines[1].rsplit("(", 1)[1].rstrip(")"))
    assert model_path.resolve().is_relative_to(venv.resolve()) and model_path.is_file()
    assert any(line.startswith(("feature_version: ", "embedding_version: ")) for line in lines[2:])

    demo = _run(installed, "moodtrack", "demo", "--no-dashboard", "--no-zmq", "--config",
                "lighting", "--seconds", "3")
    assert demo.returncode == 0, demo.stderr
    assert "10 updates/s" in demo.stderr  # the lighting preset was found and applied
    assert "stopped after 3.0 s of audio" in demo.stderr
    assert len(demo.stdout.splitlines()) >= 20  # one log line per update

    demo_ogg = next(Path(module).parent.glob("data/demo.ogg"))
    analyze = _run(installed, "moodtrack", "analyze", str(demo_ogg), "-o", "timelines",
                   "--seconds", "5")
    assert analyze.returncode == 0, analyze.stderr
    assert (installed[1] / "timelines" / "demo.ogg.csv").is_file()
