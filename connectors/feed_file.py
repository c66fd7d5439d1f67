"""Recorded feeds: a JSON Lines file of events, written by ``markov record``, read by replay.

Format (version 1)
------------------
UTF-8 JSON Lines: one JSON object per line, each line one event, ``\\n``-terminated, in
the order the events were consumed (replay preserves it). A path ending in ``.gz`` is
gzip-compressed (the writer sets the gzip mtime to 0 and stores no file name, so equal
content gives equal bytes). Every line has exactly these keys, in this order::

    {"topic": "markov.ticks", "key": "SPX", "ts": 1514903400000000000, "payload": {...}}

* ``topic`` — non-empty string, the topic the event came from (``markov.ticks``,
  ``markov.vix``, ``markov.options``, ...).
* ``key`` — string or ``null``: the message key (the symbol; ``"VIX"`` for the VIX in
  the bundled feed).
* ``ts`` — integer, event time in epoch nanoseconds (UTC); replay clocks run on it.
* ``payload`` — a JSON object: the message exactly as consumed (tick, vix, option chain
  snapshot, ... as in the message schema).

Keys other than these four are ignored by the reader (room for later versions); blank
lines are skipped. A line that is not valid JSON, not an object, or has a missing or
ill-typed field is *malformed*: :func:`read_feed` raises :class:`FeedFormatError` naming
the file and 1-based line number, or, with ``on_error="yield"``, yields a
:class:`FeedError` for that line and carries on (a replayer dead-letters it). Lines longer
than ``max_line_bytes`` are malformed too and are skipped without being held in memory.
Note: like orjson, the writer serialises NaN/inf floats in a payload as ``null``.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload

import orjson

FORMAT_VERSION = 1
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_GZIP_LEVEL = 9


class FeedFormatError(ValueError):
    """A malformed line in a recorded feed; ``line`` is 1-based."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}, line {line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One event of a recorded feed; ``line`` is its 1-based line number."""

    topic: str
    key: str | None
    ts: int
    payload: dict[str, Any]
    line: int = 0


@dataclass(frozen=True, slots=True)
class FeedError:
    """A malformed line, yielded instead of raised (``on_error="yield"``).

    ``raw`` holds the line's bytes (without the newline), truncated to
    ``max_line_bytes`` for oversized lines, so it can go to a dead-letter topic.
    """

    path: str
    line: int
    reason: str
    raw: bytes

    def as_exception(self) -> FeedFormatError:
        return FeedFormatError(self.path, self.line, self.reason)


def _is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"


def encode_record(topic: str, key: str | None, ts: int, payload: Mapping[str, Any]) -> bytes:
    """One line of the format (with its newline); checks the envelope's types."""
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"topic must be a non-empty string, got {topic!r}")
    if key is not None and not isinstance(key, str):
        raise ValueError(f"key must be a string or None, got {key!r}")
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValueError(f"ts must be an int (epoch nanoseconds), got {ts!r}")
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload must be a mapping (a JSON object), got {type(payload).__name__}")
    record = {"topic": topic, "key": key, "ts": ts, "payload": payload}
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


class FeedWriter:
    """Writes a recorded feed; a context manager that flushes and closes on exit.

    >>> with FeedWriter("feed.jsonl.gz") as out:  # doctest: +SKIP
    ...     out.write("markov.vix", "VIX", ts, {"ts": ts, "value": 17.3})
    """

    def __init__(self, path: str | Path, *, compresslevel: int = _GZIP_LEVEL) -> None:
        self.path = Path(path)
        self.count = 0
        self._raw: io.BufferedIOBase = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._out: io.BufferedIOBase
        if _is_gzip(self.path):
            # filename="" and mtime=0 keep the gzip header free of anything but content.
            self._out = gzip.GzipFile(
                filename="", mode="wb", fileobj=self._raw, compresslevel=compresslevel, mtime=0
            )
        else:
            self._out = self._raw

    def write(self, topic: str, key: str | None, ts: int, payload: Mapping[str, Any]) -> None:
        """Append one event."""
        self._out.write(encode_record(topic, key, ts, payload))
        self.count += 1

    def flush(self) -> None:
        self._out.flush()
        if self._out is not self._raw:
            self._raw.flush()

    def close(self) -> None:
        if self._raw.closed:
            return
        try:
            if self._out is not self._raw:
                self._out.close()
        finally:
            self._raw.close()

    def __enter__(self) -> FeedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def decode_record(raw: bytes) -> FeedRecord | str:
    """Parse one line; returns the record or the reason it is malformed."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON ({exc})"
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    missing = [k for k in ("topic", "key", "ts", "payload") if k not in obj]
    if missing:
        return f"missing field(s) {', '.join(missing)}; every line needs topic, key, ts, payload"
    topic, key, ts, payload = obj["topic"], obj["key"], obj["ts"], obj["payload"]
    if not isinstance(topic, str) or not topic:
        return f"'topic' must be a non-empty string, got {topic!r}"
    if key is not None and not isinstance(key, str):
        return f"'key' must be a string or null, got {key!r}"
    if isinstance(ts, bool) or not isinstance(ts, int):
        return f"'ts' must be an integer (epoch nanoseconds), got {ts!r}"
    if not isinstance(payload, dict):
        return f"'payload' must be a JSON object, got {type(payload).__name__}"
    return FeedRecord(topic, key, ts, payload)


def _decompressed(path: Path, raw: io.BufferedIOBase) -> io.BufferedIOBase:
    return gzip.GzipFile(fileobj=raw, mode="rb") if _is_gzip(path) else raw


def _lines(stream: io.BufferedIOBase, limit: int) -> Iterator[tuple[bytes, bool]]:
    """Yields (line without newline, oversized?) reading at most ``limit + 1`` bytes at once."""
    while True:
        chunk = stream.readline(limit + 1)
        if not chunk:
            return
        if chunk.endswith(b"\n"):
            yield chunk[:-1], False
        elif len(chunk) <= limit:
            yield chunk, False  # last line without a newline
        else:
            while True:  # discard the rest of the oversized line
                rest = stream.readline(limit + 1)
                if not rest or rest.endswith(b"\n"):
                    break
            yield chunk[:limit], True


@overload
def read_feed(
    path: str | Path,
    *,
    on_error: Literal["raise"] = "raise",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[FeedRecord]: ...
@overload
def read_feed(
    path: str | Path,
    *,
    on_error: Literal["yield"],
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[FeedRecord | FeedError]: ...
def read_feed(
    path: str | Path,
    *,
    on_error: Literal["raise", "yield"] = "raise",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[FeedRecord] | Iterator[FeedRecord | FeedError]:
    """Streams the events of a recorded feed, one line at a time (never the whole file).

    ``on_error="raise"`` raises :class:`FeedFormatError` at the first malformed line;
    ``"yield"`` yields a :class:`FeedError` for it and goes on. A corrupt or truncated
    gzip stream ends the iteration with an error (raised, or yielded as the last item).
    """
    if on_error not in ("raise", "yield"):
        raise ValueError(f"on_error must be 'raise' or 'yield', got {on_error!r}")
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes must be >= 1, got {max_line_bytes!r}")
    return _iter_feed(Path(path), on_error == "raise", max_line_bytes)


def _iter_feed(path: Path, raise_errors: bool, limit: int) -> Iterator[FeedRecord | FeedError]:
    name = str(path)
    with open(path, "rb") as handle, _decompressed(path, handle) as stream:
        number = 0
        try:
            for number, (raw, oversized) in enumerate(_lines(stream, limit), start=1):
                if oversized:
                    result: FeedRecord | str = f"line longer than max_line_bytes={limit}"
                elif not raw.strip():
                    continue
                else:
                    result = decode_record(raw)
                if isinstance(result, str):
                    if raise_errors:
                        raise FeedFormatError(name, number, result)
                    yield FeedError(name, number, result, raw)
                    continue
                yield FeedRecord(result.topic, result.key, result.ts, result.payload, number)
        except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as exc:
            reason = f"unreadable compressed data after line {number} ({exc})"
            if raise_errors:
                raise FeedFormatError(name, number + 1, reason) from exc
            yield FeedError(name, number + 1, reason, b"")


def meta_path(feed: str | Path) -> Path:
    """The metadata sidecar of a feed: ``x.jsonl.gz`` / ``x.jsonl`` → ``x.meta.json``."""
    feed = Path(feed)
    name = feed.name
    for suffix in (".jsonl.gz", ".jsonl", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return feed.with_name(name + ".meta.json")
