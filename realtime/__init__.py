"""moodtrack: a streaming, real-time music mood tracker.

Data flows one way: source -> ring buffer -> features -> model -> mood -> sinks.
"""

__version__ = "0.1.0"
