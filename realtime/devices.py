"""Input devices: listing, matching a ``-d/--device`` argument, and checking settings.

Matching follows python-sounddevice: an integer is a device index; a string selects the
input device whose ``"name, host API"`` contains its whitespace-separated words in order
(case-insensitive); several matches are an error unless exactly one name equals the
string. The matching itself is pure (:func:`match_device`), so it is testable without
a sound card.
"""

from __future__ import annotations

from dataclasses import dataclass

from realtime.errors import MoodtrackError

PORTAUDIO_HINT = ("PortAudio is not installed: install it with 'sudo apt-get install libportaudio2' "
                  "(macOS: 'brew install portaudio'); 'moodtrack demo' and 'moodtrack analyze' "
                  "work without it")


def import_sounddevice():
    """``sounddevice``, or a :class:`MoodtrackError` saying how to install PortAudio."""
    try:
        import sounddevice
    except OSError:  # raised when the PortAudio library is missing
        raise MoodtrackError(PORTAUDIO_HINT) from None
    except ImportError:
        raise MoodtrackError("the python package sounddevice is missing: "
                             "pip install sounddevice") from None
    return sounddevice


@dataclass(frozen=True)
class Device:
    """One PortAudio device. ``default_samplerate`` in Hz."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float
    is_default: bool = False

    @property
    def label(self) -> str:
        return f"[{self.index}] {self.name}, {self.hostapi}"


def query_devices() -> list[Device]:
    """All devices PortAudio knows, with the default input marked."""
    sd = import_sounddevice()
    try:
        infos = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise MoodtrackError(f"cannot list audio devices: {exc}") from None
    default_in = int(default_in) if default_in is not None else -1
    return [
        Device(index=i, name=info["name"], hostapi=hostapis[info["hostapi"]]["name"],
               max_input_channels=int(info["max_input_channels"]),
               default_samplerate=float(info["default_samplerate"]), is_default=i == default_in)
        for i, info in enumerate(infos)
    ]


def format_devices(devices: list[Device]) -> str:
    """Input devices, one a line, ``>`` marking the default (as sounddevice prints them)."""
    inputs = [d for d in devices if d.max_input_channels > 0]
    if not inputs:
        return ("no audio input devices found (no sound card?); "
                "'moodtrack demo' runs the live pipeline on a bundled recording")
    width = len(str(max(d.index for d in inputs)))
    return "\n".join(
        f"{'>' if d.is_default else ' '} {d.index:>{width}} {d.name}, {d.hostapi} "
        f"({d.max_input_channels} in, {d.default_samplerate:g} Hz)"
        for d in inputs
    )


def match_device(spec: int | str | None, devices: list[Device]) -> Device:
    """The input device ``spec`` selects (``None`` or ``""``: the default input)."""
    listing = "; list them with 'moodtrack devices'"
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        for d in devices:
            if d.is_default:
                return _need_inputs(d)
        raise MoodtrackError("there is no default audio input device (no sound card?): pick one "
                             "with -d/--device" + listing + ", or run 'moodtrack demo'")
    if isinstance(spec, str) and spec.strip().lstrip("-").isdigit():
        spec = int(spec)
    if isinstance(spec, int):
        for d in devices:
            if d.index == spec:
                return _need_inputs(d)
        raise MoodtrackError(f"there is no audio device with index {spec}" + listing)
    words = spec.lower().split()
    matches, exact = [], []
    for d in devices:
        if d.max_input_channels <= 0:
            continue
        full = f"{d.name}, {d.hostapi}".lower()
        pos = 0
        for w in words:
            pos = full.find(w, pos)
            if pos < 0:
                break
            pos += len(w)
        else:
            matches.append(d)
            if d.name.lower() == spec.lower():
                exact.append(d)
    if not matches:
        raise MoodtrackError(f"no input device matches {spec!r}" + listing)
    if len(matches) > 1:
        if len(exact) == 1:
            return exact[0]
        found = "; ".join(d.label for d in matches)
        raise MoodtrackError(f"several input devices match {spec!r}: {found}; "
                             "give its index or a longer part of its name")
    return matches[0]


def _need_inputs(d: Device) -> Device:
    if d.max_input_channels <= 0:
        raise MoodtrackError(f"audio device {d.label} has no input channels; choose an input "
                             "device listed by 'moodtrack devices'")
    return d


def find_again(device: Device) -> Device:
    """``device`` as PortAudio knows it now (for reopening a lost input).

    The same name and host API, preferably at the same index; when it is not listed,
    PortAudio is re-initialised (a replugged USB device comes back under a new index)
    and looked up once more. A device that is still missing is a MoodtrackError.
    """
    sd = import_sounddevice()
    for attempt in range(2):
        if attempt:
            try:  # re-enumerate: PortAudio lists devices once, at initialisation
                sd._terminate()
                sd._initialize()
            except Exception as exc:
                raise MoodtrackError(f"cannot restart PortAudio to look for input device "
                                     f"{device.name!r}: {exc}") from None
        try:
            same = [d for d in query_devices() if d.name == device.name
                    and d.hostapi == device.hostapi and d.max_input_channels > 0]
        except MoodtrackError:
            same = []
        if same:
            return next((d for d in same if d.index == device.index), same[0])
    raise MoodtrackError(f"input device {device.name!r} ({device.hostapi}) is not connected; "
                         "waiting for it to come back")


def resolve_input(spec: int | str | None, *, sample_rate: int = 0, channels: int = 0
                  ) -> tuple[Device, int, int]:
    """``(device, sample_rate, channels)`` checked with PortAudio.

    ``sample_rate`` 0 means the device's default rate; ``channels`` 0 means the first
    two input channels (one on a mono device), mixed to mono for analysis. Not all of
    them: ALSA's ``default`` and ``pulse`` devices offer 32 channels of which a stereo
    source fills two, and averaging in 30 silent ones would read 12 dB low.
    """
    sd = import_sounddevice()
    device = match_device(spec, query_devices())
    rate = int(sample_rate) or int(round(device.default_samplerate))
    n_ch = int(channels) or min(2, device.max_input_channels)
    if n_ch > device.max_input_channels:
        raise MoodtrackError(f"input device {device.label} has {device.max_input_channels} input "
                             f"channel(s), not {n_ch}: pass -c/--channels "
                             f"1..{device.max_input_channels}")
    try:
        sd.check_input_settings(device=device.index, channels=n_ch, samplerate=rate,
                                dtype="float32")
    except Exception as exc:  # PortAudioError or ValueError
        raise MoodtrackError(f"input device {device.label} does not support {rate} Hz with {n_ch} "
                             f"channel(s) ({exc}); pass another -r/--samplerate, e.g. "
                             f"{device.default_samplerate:g}") from None
    return device, rate, n_ch
