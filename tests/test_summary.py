"""Timeline summaries on synthetic timelines with known answers; reading CSV timelines back."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.errors import MoodtrackError
from realtime.mood import MoodEstimator
from realtime.sinks import CsvSink
from realtime.summary import (SUMMARY_COLUMNS, format_time, mood_changes, mood_segments,
                              summarize, summary_row, time_in_moods)
from realtime.timeline import Timeline, read_timeline


def make_timeline(points, *, rate=2.0, start=1.0):
    """``points``: (seconds, valence, arousal) pieces, or (seconds, None, None) for silence."""
    est = MoodEstimator(smoothing_s=0.0)
    updates, t = [], start
    for seconds, v, a in points:
        for _ in range(int(round(seconds * rate))):
            silent = v is None
            updates.append(est.update(t, 0.0 if silent else v, 0.0 if silent else a,
                                      -90.0 if silent else -20.0))
            t += 1.0 / rate
    return updates, Timeline.from_updates(updates, name="synthetic")


def test_time_in_moods_adds_up_to_the_last_update():
    # the first update (t = 1) stands for the first second: calm 1 + 19 x 0.5 s
    _, tl = make_timeline([(10, 0.5, -0.5), (10, None, None), (20, -0.6, 0.7)])
    times = time_in_moods(tl)
    assert times == pytest.approx({"calm": 10.5, "silence": 10.0, "tense": 20.0,
                                   "uplifting": 0.0, "melancholic": 0.0})
    assert sum(times.values()) == pytest.approx(tl.t[-1])


def test_one_step_gives_one_change_at_its_time():
    _, tl = make_timeline([(30, 0.5, 0.5), (30, -0.5, -0.5)])  # step after t = 30.5
    changes = mood_changes(tl, window_s=5.0)
    assert len(changes) == 1
    c = changes[0]
    assert c["t"] == pytest.approx(30.5)
    assert (c["from"], c["to"]) == ("uplifting", "melancholic")
    assert c["jump"] == pytest.approx(np.hypot(1.0, 1.0), abs=1e-3)
    assert mood_segments(tl) == [{"start": 0.0, "end": 30.5, "mood": "uplifting"},
                                 {"start": 30.5, "end": 60.5, "mood": "melancholic"}]


def test_changes_strongest_first_and_apart_and_small_ones_ignored():
    _, tl = make_timeline([(20, 0.4, 0.4), (20, -0.4, 0.4), (20, 0.5, -0.5), (20, 0.55, -0.45)])
    changes = mood_changes(tl, window_s=5.0, min_jump=0.25)
    # tense -> calm is the biggest jump (0.8 along valence and 0.9 arousal), then
    # uplifting -> tense (0.8); the last step (0.07) is under min_jump.
    assert [(c["from"], c["to"]) for c in changes] == [("tense", "calm"), ("uplifting", "tense")]
    assert [c["t"] for c in changes] == pytest.approx([40.5, 20.5])
    assert changes[0]["jump"] == pytest.approx(np.hypot(0.9, 0.9), abs=1e-3)
    assert mood_changes(tl, window_s=5.0, max_changes=1) == changes[:1]


def test_short_blips_stay_in_their_section_and_silence_is_a_section():
    pieces = [(20, 0.5, -0.5), (2, -0.5, 0.5), (20, 0.5, -0.5), (6, None, None),
              (10, 0.5, 0.5)]
    _, tl = make_timeline(pieces)
    segs = mood_segments(tl, hold_s=4.0)
    assert [s["mood"] for s in segs] == ["calm", "silence", "uplifting"]
    assert [(s["start"], s["end"]) for s in segs] == [(0.0, 42.5), (42.5, 48.5), (48.5, 58.5)]
    # held for less than 4 s: the 2-s tense blip is no section, but hold 1 s and it is
    assert [s["mood"] for s in mood_segments(tl, hold_s=1.0)] == [
        "calm", "tense", "calm", "silence", "uplifting"]


def test_summarize_and_its_row():
    _, tl = make_timeline([(30, 0.5, 0.5), (30, -0.5, -0.5)])
    s = summarize(tl, duration_s=61.0)
    assert s["duration_s"] == 61.0 and s["updates"] == 120
    assert s["dominant_mood"] == "uplifting"  # 30.5 s (with the first update's 1 s) vs 30 s
    assert s["mean_valence"] == pytest.approx(0.5 * (30.5 - 30) / 60.5, abs=1e-3)
    row = summary_row(s, file="a.wav")
    assert tuple(row) == SUMMARY_COLUMNS
    assert row["strongest_change"] == "uplifting->melancholic"
    assert row["changes"] == "0:30 uplifting->melancholic (1.41)"
    assert row["mood_changes"] == 1 and row["uplifting_s"] == 30.5 and row["error"] == ""
    failed = summary_row(None, file="b.wav", error="cannot read audio file b.wav")
    assert failed["error"].startswith("cannot read") and failed["duration_s"] == ""


def test_empty_and_all_silent_timelines():
    _, empty = make_timeline([])
    s = summarize(empty)
    assert (s["updates"], s["mean_valence"], s["dominant_mood"], s["changes"]) == (0, None, None, [])
    _, silent = make_timeline([(10, None, None)])
    s = summarize(silent)
    assert s["dominant_mood"] == "silence" and s["mean_valence"] is None
    assert s["segments"] == [{"start": 0.0, "end": 10.5, "mood": "silence"}]


def test_format_time():
    assert [format_time(x) for x in (0, 59.6, 92, 3725)] == ["0:00", "1:00", "1:32", "1:02:05"]


def test_csv_round_trip_gives_the_same_summary(tmp_path):
    updates, tl = make_timeline([(15, 0.3, 0.6), (5, None, None), (15, -0.2, -0.7)])
    sink = CsvSink(tmp_path / "x.csv")
    for u in updates:
        sink.emit(u)
    sink.close()
    back = read_timeline(tmp_path / "x.csv")
    assert back.name == "x.csv"
    for k in ("t", "valence", "arousal", "confidence", "silence"):
        np.testing.assert_array_equal(getattr(back, k), getattr(tl, k))
    assert list(back.mood) == list(tl.mood)
    assert {**summarize(back), "timeline": ""} == {**summarize(tl), "timeline": ""}


@pytest.mark.parametrize("text, message", [
    (None, "cannot read timeline"),
    ("", "is empty"),
    ("a,b,c\n1,2,3\n", "lacks the column"),
    ("t,valence,arousal,mood,confidence,level_db,silence\n1,x,0,calm,0.5,-20,0\n",
     "line 2: could not convert"),
    ("t,valence,arousal,mood,confidence,level_db,silence\n1,0,0,happy,0.5,-20,0\n",
     "line 2: unknown mood 'happy'"),
    ("t,valence,arousal,mood,confidence,level_db,silence\n1,0,0,calm\n", "line 2: too few"),
    ("t,valence,arousal,mood,confidence,level_db,silence\n2,0,0,calm,1,0,0\n1,0,0,calm,1,0,0\n",
     "do not increase"),
])
def test_bad_timelines_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(MoodtrackError, match=message) as exc:
        read_timeline(path)
    assert str(path) in str(exc.value)


def test_a_change_across_a_pause_is_found_where_the_sound_resumes():
    _, tl = make_timeline([(20, -0.5, -0.5), (8, None, None), (20, 0.5, 0.5)])
    (c,) = mood_changes(tl, window_s=5.0)
    assert (c["from"], c["to"], c["t"]) == ("melancholic", "uplifting", pytest.approx(28.5))


def test_changes_within_one_mood_say_which_way():
    from realtime.summary import change_label

    assert change_label(-0.5, -0.2, -0.5, -0.8) == "melancholic, calmer"
    assert change_label(0.2, 0.3, 0.8, 0.4) == "uplifting, more positive"
    assert change_label(0.5, -0.5, -0.5, 0.5) == "calm->tense"
