"""OSC output for lighting desks and visuals software (TouchDesigner, Resolume, QLC+).

Each update is sent to every target as one OSC bundle (timetag "immediately") over UDP,
with numbers only (floats ``f``, integers ``i``): TouchDesigner's OSC In takes nothing
else. Default addresses (:data:`DEFAULT_ADDRESSES`):

==================  ========  ===========================================================
address             args      value
==================  ========  ===========================================================
/mood/valence       f         valence: [0, 1] with ``range="unit"`` (default; 0.5 neutral)
                              or [-1, 1] with ``range="bipolar"``
/mood/arousal       f         arousal, the same ranges
/mood/quadrant      i         1..4 (uplifting, tense, melancholic, calm); while silent the
                              quadrant of the held valence/arousal point
/mood/confidence    f         0..1
/mood/color         f f f     mood colour r, g, b in [0, 1] (sent when the update has one)
/mood/speech        f         0..1, how much of the update interval is speech (sent when
                              the model gives it)
==================  ========  ===========================================================

Further fields go out only when mapped: ``red``, ``green``, ``blue`` (one colour channel
each, [0, 1]) and ``silence`` (i, 1 while silent). An address map ``{field: address}``
moves a field (``{"arousal": "/composition/layers/1/video/opacity"}``), sends it to
several addresses (a list), or turns it off (``""``); fields not in the map keep their
defaults.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping

from realtime.errors import MoodtrackError
from realtime.mood import MoodUpdate, quadrant_of

DEFAULT_ADDRESSES = {"valence": "/mood/valence", "arousal": "/mood/arousal",
                     "quadrant": "/mood/quadrant", "confidence": "/mood/confidence",
                     "color": "/mood/color", "speech": "/mood/speech"}
#: Every field an address map may name.
FIELDS = (*DEFAULT_ADDRESSES, "red", "green", "blue", "silence")
RANGES = ("unit", "bipolar")
_FORBIDDEN = set(" #*,?[]{}")


def parse_target(text: str) -> tuple[str, int]:
    """``"HOST:PORT"``, ``"[IPv6]:PORT"`` or ``"PORT"`` (localhost) as (host, port)."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host, port = "127.0.0.1", str(text)
    host = host.strip("[]")
    if not port.isdigit() or not 1 <= int(port) <= 65535 or (sep and not host):
        raise MoodtrackError(f"OSC target {text!r} is invalid: give HOST:PORT with a port in "
                             "1..65535, e.g. 127.0.0.1:9000")
    return host, int(port)


#: Largest OSC bundle, bytes: one UDP datagram with room to spare (IPv4 allows 65 507), so
#: that no map can make a bundle the OS refuses ("Message too long") or cost the analysis
#: thread more than a fraction of a millisecond.
MAX_BUNDLE_BYTES = 8192
#: Most OSC targets (each is a socket: the file-descriptor limit bounds them too).
MAX_TARGETS = 64


def _pad4(n: int) -> int:
    return (n + 3) // 4 * 4


def bundle_size(addresses: Mapping[str, tuple[str, ...]]) -> int:
    """Bytes of the largest bundle ``addresses`` (``{field: (address, ...)}``) can make."""
    n_args = {"color": 3}
    size = 16  # "#bundle\0" and the timetag
    for field, addrs in addresses.items():
        k = n_args.get(field, 1)
        size += sum(4 + _pad4(len(a.encode()) + 1) + _pad4(k + 2) + 4 * k for a in addrs)
    return size


def check_targets(targets) -> list[str]:
    """OSC targets checked: each ``HOST:PORT``, at most :data:`MAX_TARGETS` and fewer than
    half the file descriptors this process may open."""
    import resource

    targets = list(targets)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    most = MAX_TARGETS if soft == resource.RLIM_INFINITY else min(MAX_TARGETS, soft // 2)
    if len(targets) > most:
        raise MoodtrackError(f"{len(targets)} OSC targets is too many: at most {most} (each is a "
                             f"socket; the open-file limit is {soft})")
    for t in targets:
        parse_target(t)
    return targets


def check_address_map(mapping: Mapping) -> dict[str, tuple[str, ...]]:
    """A user address map checked and normalised to ``{field: (address, ...)}``; the bundle
    it makes must fit :data:`MAX_BUNDLE_BYTES`."""
    if not isinstance(mapping, Mapping):
        raise MoodtrackError("OSC address map must be a table of field = address")
    out: dict[str, tuple[str, ...]] = {}
    for field, value in mapping.items():
        if field not in FIELDS:
            raise MoodtrackError(f"OSC address map: unknown field {field!r}; fields are "
                                 + ", ".join(FIELDS))
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
            raise MoodtrackError(f"OSC address map: {field} must be an address, a list of "
                                 f"addresses or \"\" (off), not {value!r}")
        addrs = tuple(v for v in values if v)
        for a in addrs:
            if not a.startswith("/") or _FORBIDDEN & set(a):
                raise MoodtrackError(f"OSC address map: {field} address {a!r} is invalid: it "
                                     "must start with / and have no spaces or any of #*,?[]{}")
        out[field] = addrs
    full = {f: (a,) for f, a in DEFAULT_ADDRESSES.items()}
    full.update(out)
    size = bundle_size(full)
    if size > MAX_BUNDLE_BYTES:
        raise MoodtrackError(f"OSC address map: its bundle would be {size} bytes, more than the "
                             f"{MAX_BUNDLE_BYTES} allowed (one UDP datagram); map fewer or "
                             "shorter addresses")
    return out


def resolve_addresses(address_map: Mapping | None = None) -> dict[str, tuple[str, ...]]:
    """Defaults overridden field by field by ``address_map``; fields with no address dropped."""
    out = {f: (a,) for f, a in DEFAULT_ADDRESSES.items()}
    out.update(check_address_map(address_map or {}))
    return {f: a for f, a in out.items() if a}


def osc_values(update: MoodUpdate, *, range: str = "unit") -> dict[str, list]:
    """Each field's OSC arguments for ``update`` (floats or ints only)."""
    def scaled(x: float) -> float:
        x = max(-1.0, min(1.0, float(x)))
        return (x + 1.0) / 2.0 if range == "unit" else x

    out: dict[str, list] = {
        "valence": [scaled(update.valence)],
        "arousal": [scaled(update.arousal)],
        "quadrant": [int(update.quadrant[1]) if update.quadrant
                     else quadrant_of(update.valence, update.arousal)],
        "confidence": [max(0.0, min(1.0, float(update.confidence)))],
        "silence": [int(bool(update.silence))],
    }
    if update.speech is not None:
        out["speech"] = [max(0.0, min(1.0, float(update.speech)))]
    if update.color is not None:
        rgb = [max(0.0, min(1.0, float(c))) for c in update.color]
        out.update(color=rgb, red=rgb[:1], green=rgb[1:2], blue=rgb[2:])
    return out


class OscSink:
    """Sends each update as one OSC bundle to ``host``:``port`` over UDP.

    ``range``: ``"unit"`` (valence/arousal in [0, 1], what Resolume and QLC+ expect) or
    ``"bipolar"`` ([-1, 1]); ``address_map``: see the module docstring. Sending never
    blocks: a datagram the OS refuses is dropped and counted in :attr:`dropped` (the
    first failure is reported on stderr).
    """

    def __init__(self, host: str, port: int, *, range: str = "unit",
                 address_map: Mapping | None = None):
        if range not in RANGES:
            raise MoodtrackError(f"OSC range {range!r} is invalid: it must be one of "
                                 + ", ".join(RANGES))
        self.target = f"{host}:{port}"
        self.range = range
        self.addresses = resolve_addresses(address_map)
        try:
            family, _, _, _, self._sockaddr = socket.getaddrinfo(
                host, port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError) as e:
            raise MoodtrackError(f"OSC target {host}:{port}: cannot resolve {host!r} ({e}); "
                                 "give an IP address or a known host name") from None
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.sent = self.dropped = 0
        self._closed = False

    def bundle(self, update: MoodUpdate) -> bytes:
        """The OSC bundle datagram for ``update``."""
        from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
        from pythonosc.osc_message_builder import OscMessageBuilder

        values = osc_values(update, range=self.range)
        bundle = OscBundleBuilder(IMMEDIATELY)
        for field, addrs in self.addresses.items():
            if field not in values:
                continue
            for addr in addrs:
                msg = OscMessageBuilder(address=addr)
                for v in values[field]:
                    msg.add_arg(v, "i" if isinstance(v, int) else "f")
                bundle.add_content(msg.build())
        return bundle.build().dgram

    def emit(self, update: MoodUpdate) -> None:
        if self._closed:
            return
        data = self.bundle(update)
        try:
            self._sock.sendto(data, self._sockaddr)
            self.sent += 1
        except OSError as e:  # buffer full, network down, refused: drop, never wait
            self.dropped += 1
            if self.dropped == 1:
                print(f"moodtrack: OSC to {self.target}: {e.strerror or e}; dropping bundles "
                      "until it works again", file=sys.stderr)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close()
