"""The one exception type moodtrack raises for problems a user can fix."""


class MoodtrackError(Exception):
    """A problem with input, a device, a config key or a model, with a message saying what to do.

    The CLI prints the message (never a traceback) and exits with status 2.
    """
