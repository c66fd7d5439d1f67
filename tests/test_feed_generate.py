"""The bundled feed and its generator: exact OHLC, ordering, determinism, metadata."""

from __future__ import annotations

import gzip
import hashlib
import itertools
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.feed_file import FeedRecord, meta_path, read_feed
from models.smile import NEW_YORK
from stream.feeds import BUNDLED_FEED, BUNDLED_META, load_bundled_meta
from stream.feeds.generate import (
    DEFAULT_END,
    DEFAULT_SEED,
    DEFAULT_START,
    SESSION_MINUTES,
    TIE_ORDER,
    DailyBar,
    generate_feed,
    intraday_path,
    load_daily,
    main,
    reflect_into,
)

Bundled = tuple[list[FeedRecord], dict[date, list[FeedRecord]], dict[date, list[FeedRecord]]]
TOPIC_RANK = {topic: rank for rank, topic in enumerate(TIE_ORDER)}


def ny_date(ts: int) -> date:
    return pd.Timestamp(ts, tz="UTC").tz_convert(NEW_YORK).date()


@pytest.fixture(scope="module")
def bundled() -> Bundled:
    """The bundled feed, grouped: ticks and VIX by New York date, all records in order."""
    records = list(read_feed(BUNDLED_FEED))
    stamps = pd.to_datetime(np.array([r.ts for r in records]), utc=True)
    days = stamps.tz_convert(NEW_YORK).date
    ticks: dict[date, list[FeedRecord]] = defaultdict(list)
    vix: dict[date, list[FeedRecord]] = defaultdict(list)
    for day, r in zip(days, records, strict=True):
        if r.topic == "markov.ticks":
            ticks[day].append(r)
        elif r.topic == "markov.vix":
            vix[day].append(r)
    return records, ticks, vix


@pytest.fixture(scope="module")
def daily() -> dict[date, DailyBar]:
    return {bar.day: bar for bar in load_daily(DEFAULT_START, DEFAULT_END)}


def test_meta_matches_the_file(bundled: Bundled) -> None:
    records, _, _ = bundled
    meta = load_bundled_meta()
    assert meta_path(BUNDLED_FEED) == BUNDLED_META
    data = BUNDLED_FEED.read_bytes()
    assert meta["bytes"] == len(data) <= 3_000_000
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    counts = {topic: 0 for topic in TIE_ORDER}
    for r in records:
        counts[r.topic] += 1
    assert meta["counts"] == counts
    assert meta["events"] == len(records)
    assert (meta["first_ts"], meta["last_ts"]) == (records[0].ts, records[-1].ts)
    assert meta["synthetic"] is True and "SYNTHETIC" in meta["note"]
    assert meta["seed"] == DEFAULT_SEED
    assert (meta["start"], meta["end"]) == (DEFAULT_START.isoformat(), DEFAULT_END.isoformat())


def test_ticks_start_at_open_end_at_close_and_touch_high_and_low(
    bundled: Bundled, daily: dict[date, DailyBar]
) -> None:
    _, ticks, _ = bundled
    assert sorted(ticks) == sorted(daily)
    for day, bar in daily.items():
        prices = [r.payload["price"] for r in ticks[day]]
        assert len(prices) == SESSION_MINUTES + 1
        assert (prices[0], prices[-1], max(prices), min(prices)) == (
            bar.open,
            bar.close,
            bar.high,
            bar.low,
        ), day
        assert sum(r.payload["size"] for r in ticks[day]) == bar.volume
        assert all(r.payload["bid"] < r.payload["price"] < r.payload["ask"] for r in ticks[day])


def test_session_times_are_new_york_hours_across_the_dst_change(bundled: Bundled) -> None:
    _, ticks, _ = bundled
    utc = {d: pd.Timestamp(ticks[d][0].ts, tz="UTC") for d in (date(2018, 3, 9), date(2018, 3, 12))}
    assert utc[date(2018, 3, 9)].strftime("%H:%M") == "14:30"  # EST
    assert utc[date(2018, 3, 12)].strftime("%H:%M") == "13:30"  # EDT
    last = pd.Timestamp(ticks[date(2018, 3, 12)][-1].ts, tz="UTC").tz_convert(NEW_YORK)
    assert last.strftime("%H:%M") == "16:00"


def test_vix_closes_each_day_at_the_arch_value(
    bundled: Bundled, daily: dict[date, DailyBar]
) -> None:
    _, _, vix = bundled
    for day, bar in daily.items():
        values = [r.payload["value"] for r in vix[day]]
        assert len(values) == 26
        assert values[-1] == bar.vix
        assert all(v > 0 for v in values)
        assert all(r.key == "VIX" for r in vix[day])


def test_events_in_time_order_strict_per_topic_with_documented_ties(bundled: Bundled) -> None:
    records, _, _ = bundled
    last_by_topic: dict[str, int] = {}
    for prev, cur in itertools.pairwise(records):
        assert (prev.ts, TOPIC_RANK[prev.topic]) < (cur.ts, TOPIC_RANK[cur.topic])
    for r in records:
        assert r.ts > last_by_topic.get(r.topic, -1)
        last_by_topic[r.topic] = r.ts
        assert r.payload["ts"] == r.ts


def test_option_snapshots_are_chain_messages_at_the_tick_price(bundled: Bundled) -> None:
    records, _, _ = bundled
    price_at = {r.ts: r.payload["price"] for r in records if r.topic == "markov.ticks"}
    chains = [r for r in records if r.topic == "markov.options"]
    assert len(chains) == 13 * 61
    for r in chains[::50]:
        assert r.key == "SPX"
        assert r.payload["underlying_price"] == price_at[r.ts]
        assert len({q["expiry"] for q in r.payload["quotes"]}) == 2
        assert all(q["strike"] % 5 == 0 for q in r.payload["quotes"])


def test_generator_reproduces_the_bundled_lines_byte_for_byte(
    tmp_path: Path, bundled: Bundled
) -> None:
    days = (date(2018, 2, 5), date(2018, 2, 6))  # the VIX spike
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    meta = generate_feed(first, start=days[0], end=days[1], seed=DEFAULT_SEED)
    generate_feed(second, start=days[0], end=days[1], seed=DEFAULT_SEED)
    assert first.read_bytes() == second.read_bytes()
    # The sidecars differ only in the file name.
    assert meta_path(first).read_bytes().replace(b'"a.jsonl.gz"', b'"b.jsonl.gz"') == (
        meta_path(second).read_bytes()
    )
    assert meta["trading_days"] == 2
    # Each day has its own seed streams, so a sub-range is an exact slice of the full file.
    regenerated = gzip.decompress(first.read_bytes()).splitlines()
    bundled_lines = gzip.decompress(BUNDLED_FEED.read_bytes()).splitlines()
    records, ticks, _ = bundled
    start = next(i for i, r in enumerate(records) if r.ts == ticks[days[0]][0].ts)
    assert bundled_lines[start : start + len(regenerated)] == regenerated
    assert ny_date(next(read_feed(first)).ts) == days[0]


def test_a_different_seed_changes_the_intraday_data(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    generate_feed(a, start=date(2018, 2, 5), end=date(2018, 2, 5), seed=1)
    generate_feed(b, start=date(2018, 2, 5), end=date(2018, 2, 5), seed=2)
    assert a.read_bytes() != b.read_bytes()


@pytest.mark.parametrize(
    ("o", "h", "lo", "c"),
    [
        (100.0, 101.5, 99.25, 100.5),  # ordinary day
        (100.0, 100.0, 98.0, 99.0),  # opens at the high
        (100.0, 102.0, 99.0, 99.0),  # closes at the low
        (100.0, 100.0, 100.0, 100.0),  # flat
        (2614.78, 2701.04, 2593.07, 2695.14),  # 2018-02-06
    ],
)
def test_intraday_path_hits_ohlc_exactly(o: float, h: float, lo: float, c: float) -> None:
    bar = DailyBar(date(2018, 2, 6), o, h, lo, c, volume=1, vix=20.0, prev_vix=20.0)
    for seed in range(20):
        path = intraday_path(bar, np.random.default_rng(seed))
        assert path.size == SESSION_MINUTES + 1
        assert (path[0], path[-1], path.max(), path.min()) == (o, c, h, lo)
        assert np.array_equal(path, np.round(path, 2))


def test_reflection_folds_into_the_range_and_keeps_inside_points() -> None:
    x = np.array([-3.0, -0.5, 0.0, 0.3, 1.0, 1.4, 2.5, 4.2])
    folded = reflect_into(x, 0.0, 1.0)
    assert folded == pytest.approx([1.0, 0.5, 0.0, 0.3, 1.0, 0.6, 0.5, 0.2])


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--start", "2018-02-06", "--end", "2018-02-05", "--out", str(tmp_path / "x.jsonl")])
    assert info.value.code == 2
    assert "--end (2018-02-05) is before --start (2018-02-06)" in capsys.readouterr().err
    # A weekend has no trading days: a clear message, exit code 2, no traceback.
    code = main(
        ["--start", "2018-02-03", "--end", "2018-02-04", "--out", str(tmp_path / "y.jsonl")]
    )
    assert code == 2
    assert "no S&P 500 trading days between 2018-02-03 and 2018-02-04" in capsys.readouterr().err
    one_day = ["--start", "2018-02-05", "--end", "2018-02-05"]
    assert main([*one_day, "--out", str(tmp_path / "missing" / "z.jsonl")]) == 2
    assert "No such file or directory" in capsys.readouterr().err
