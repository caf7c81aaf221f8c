"""The soak test (tools/soak.py), shortened for CI: a minute through analyze and a few
seconds of live --file with the dashboard (on a pseudo-terminal), CSV and ZeroMQ.
The full run: ``python tools/soak.py`` (2 h analyze, 10 min live; see README)."""

from __future__ import annotations

from pathlib import Path

from tools import soak


def test_short_soak_every_update_no_seq_gap_flat_memory(tiny_model_path, tmp_path):
    model = Path(tiny_model_path)
    ana = soak.soak_analyze(model, 90.0, tmp_path, max_growth=20.0)
    assert ana["problems"] == [] and ana["updates"] == 179, ana
    live = soak.soak_live(model, 4.0, tmp_path, max_growth=20.0)
    assert live["problems"] == [] and live["updates"] == 7 and live["zmq_messages"] == 7, live
    assert "0 dropped blocks, 0 overflows" in live["summary"]
