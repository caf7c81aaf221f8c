"""The one way to build a :class:`~realtime.pipeline.Pipeline`: from a run :data:`Config`.

The live modes (``live``, ``demo``) and ``analyze`` build their pipeline here, so a config
key that changes the analysis (update rate, smoothing, silence threshold, mood colour,
...) means the same in every mode. What differs between modes is passed in: the model
(loaded once per process), the sinks and the stats.
"""

from __future__ import annotations

from collections.abc import Iterable

from realtime.config import Config
from realtime.stats import PipelineStats


def build_pipeline(cfg: Config, *, model, sinks: Iterable = (),
                   stats: PipelineStats | None = None):
    """A fresh :class:`~realtime.pipeline.Pipeline` for one stream, as ``cfg`` says.

    - ``cfg``: a merged config (:func:`realtime.config.load`); the ``[analysis]`` keys,
      ``input.channel_weights`` and the ``[lighting]`` colour keys are read here;
    - ``model``: the :class:`~realtime.model.MoodModel` (fixes the analysis rate);
    - ``sinks``: objects with ``emit(update)``, called on the analysis thread;
    - ``stats``: counters to keep up to date (None: a fresh :class:`PipelineStats`).
    """
    from realtime.colour import MoodColour
    from realtime.pipeline import Pipeline

    inp, a, lit = cfg["input"], cfg["analysis"], cfg["lighting"]
    colour = MoodColour(palette=lit["palette"], brightness=lit["brightness"],
                        smoothing_s=lit["smoothing_s"])
    return Pipeline(model, update_hz=a["update_hz"], smoothing_s=a["smoothing_s"],
                    silence_db=a["silence_db"], sinks=sinks, stats=stats, colour=colour,
                    channel_weights=inp["channel_weights"], loudness=a["loudness"],
                    speech_hold=a["speech_hold"])
