"""The recorded-feed format: writer/reader round trip, gzip, malformed lines."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.feed_file import (
    FeedError,
    FeedFormatError,
    FeedRecord,
    FeedWriter,
    encode_record,
    meta_path,
    read_feed,
)

Event = tuple[str, str | None, int, dict[str, Any]]
EVENTS: list[Event] = [
    ("markov.ticks", "SPX", 1_514_903_400_000_000_000, {"symbol": "SPX", "price": 2683.73}),
    ("markov.vix", None, 1_514_904_300_000_000_000, {"ts": 1, "value": 9.77}),
    (
        "markov.options",
        "SPX",
        1_514_905_200_000_000_000,
        {"symbol": "SPX", "quotes": [{"strike": 2700.0, "right": "C", "note": "é ✓"}]},
    ),
]


def write_events(path: Path, events: list[Event] = EVENTS) -> FeedWriter:
    with FeedWriter(path) as out:
        for event in events:
            out.write(*event)
    return out


@pytest.mark.parametrize("name", ["feed.jsonl", "feed.jsonl.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    writer = write_events(path)
    assert writer.count == len(EVENTS)
    records = list(read_feed(path))
    assert [(r.topic, r.key, r.ts, r.payload) for r in records] == EVENTS
    assert [r.line for r in records] == [1, 2, 3]
    assert all(isinstance(r, FeedRecord) for r in records)


def test_gzip_is_chosen_by_suffix_and_deterministic(tmp_path: Path) -> None:
    plain, first, second = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    for path in (plain, first, second):
        write_events(path)
    assert first.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(first.read_bytes()) == plain.read_bytes()
    # mtime 0 and no stored file name: equal content gives equal bytes whatever the name.
    assert first.read_bytes() == second.read_bytes()


def test_each_line_is_the_documented_envelope(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    write_events(path)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    first = orjson.loads(lines[0])
    assert list(first) == ["topic", "key", "ts", "payload"]
    assert lines[1].startswith(b'{"topic":"markov.vix","key":null,"ts":1514904300000000000,')


def test_writer_closes_the_file_when_the_block_raises(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl.gz"
    with pytest.raises(RuntimeError), FeedWriter(path) as out:
        out.write(*EVENTS[0])
        raise RuntimeError("consumer failed")
    # The gzip trailer was written: the one event is readable.
    assert [r.payload for r in read_feed(path)] == [EVENTS[0][3]]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "SPX", 1, {}), "topic"),
        (("t", 5, 1, {}), "key"),
        (("t", "SPX", 1.5, {}), "ts"),
        (("t", "SPX", True, {}), "ts"),
        (("t", "SPX", 1, [1, 2]), "payload"),
    ],
)
def test_writer_rejects_a_bad_envelope(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        encode_record(*args)


BAD_LINES = [
    (b'{"topic":"markov.ticks","key":"SPX","ts":1,"payload":{"p":1}', "invalid JSON"),
    (b"[1, 2, 3]", "expected a JSON object"),
    (b'{"topic":"markov.ticks","key":"SPX","payload":{}}', "missing field(s) ts"),
    (b'{"topic":"","key":"SPX","ts":1,"payload":{}}', "'topic'"),
    (b'{"topic":"t","key":7,"ts":1,"payload":{}}', "'key'"),
    (b'{"topic":"t","key":"SPX","ts":1.5,"payload":{}}', "'ts'"),
    (b'{"topic":"t","key":"SPX","ts":true,"payload":{}}', "'ts'"),
    (b'{"topic":"t","key":"SPX","ts":1,"payload":"x"}', "'payload'"),
]


def make_mixed_file(path: Path, bad: bytes) -> None:
    good = [encode_record(*event) for event in EVENTS]
    # line 1 good, 2 blank (skipped), 3 bad, 4-5 good
    content = good[0] + b"\n" + bad + b"\n" + good[1] + good[2]
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)


@pytest.mark.parametrize(("bad", "reason"), BAD_LINES)
@pytest.mark.parametrize("name", ["feed.jsonl", "feed.jsonl.gz"])
def test_malformed_line_raises_with_path_and_line_number(
    tmp_path: Path, name: str, bad: bytes, reason: str
) -> None:
    path = tmp_path / name
    make_mixed_file(path, bad)
    reader = read_feed(path)
    assert next(reader).line == 1  # streaming: the good line comes before the error
    with pytest.raises(FeedFormatError) as info:
        next(reader)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}, line 3: ")
    assert reason in str(info.value)


@pytest.mark.parametrize(("bad", "reason"), BAD_LINES)
def test_yield_mode_reports_the_bad_line_and_carries_on(
    tmp_path: Path, bad: bytes, reason: str
) -> None:
    path = tmp_path / "feed.jsonl"
    make_mixed_file(path, bad)
    items = list(read_feed(path, on_error="yield"))
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["FeedRecord", "FeedError", "FeedRecord", "FeedRecord"]
    error = items[1]
    assert isinstance(error, FeedError)
    assert (error.line, error.raw) == (3, bad)
    assert reason in error.reason
    assert error.as_exception().line == 3
    assert [i.line for i in items] == [1, 3, 4, 5]


def test_oversized_line_is_an_error_and_the_next_line_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    big = encode_record("t", "SPX", 1, {"blob": "x" * 5000})
    path.write_bytes(encode_record(*EVENTS[0]) + big + encode_record(*EVENTS[1]))
    items = list(read_feed(path, on_error="yield", max_line_bytes=1000))
    assert isinstance(items[1], FeedError) and "max_line_bytes=1000" in items[1].reason
    assert len(items[1].raw) == 1000
    assert [i.line for i in items] == [1, 2, 3]
    assert isinstance(items[2], FeedRecord) and items[2].payload == EVENTS[1][3]


def test_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(encode_record(*EVENTS[0]) + encode_record(*EVENTS[1]).rstrip(b"\n"))
    assert [r.ts for r in read_feed(path)] == [EVENTS[0][2], EVENTS[1][2]]


def test_truncated_gzip_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl.gz"
    write_events(path, EVENTS * 200)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 12])  # drop the trailer and some data
    items = list(read_feed(path, on_error="yield"))
    assert isinstance(items[-1], FeedError)
    assert "unreadable compressed data" in items[-1].reason
    with pytest.raises(FeedFormatError, match="unreadable compressed data"):
        list(read_feed(path))


def test_damaged_gzip_data_is_reported(tmp_path: Path) -> None:
    # Damage inside the deflate stream raises zlib.error, which escaped as a traceback.
    path = tmp_path / "feed.jsonl.gz"
    write_events(path, EVENTS * 200)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))
    items = list(read_feed(path, on_error="yield"))
    assert isinstance(items[-1], FeedError)
    assert "unreadable compressed data" in items[-1].reason
    with pytest.raises(FeedFormatError):  # the garbled line before it, or the data itself
        list(read_feed(path))


def test_reader_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        read_feed(tmp_path / "x.jsonl", on_error="skip")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="max_line_bytes"):
        read_feed(tmp_path / "x.jsonl", max_line_bytes=0)


def test_meta_path_names_the_sidecar(tmp_path: Path) -> None:
    assert meta_path(tmp_path / "spx.jsonl.gz") == tmp_path / "spx.meta.json"
    assert meta_path(tmp_path / "spx.jsonl") == tmp_path / "spx.meta.json"
