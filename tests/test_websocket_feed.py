"""The WebSocket feed: subscribe flow, snapshot, updates, heartbeats, errors, slow clients."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from connectors.websocket_feed import SLOW_CLIENT_CLOSE_CODE, WebSocketFeed


def range_json(symbol: str, seq: int, pad: int = 0) -> bytes:
    return orjson.dumps({"symbol": symbol, "seq": seq, "low": 1.0, "high": 2.0, "pad": "x" * pad})


async def recv(ws: ClientConnection) -> dict[str, Any]:
    msg: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    return msg


@pytest.fixture
async def feed() -> Any:
    f = WebSocketFeed(queue_size=16, heartbeat_seconds=0.05)
    await f.start()
    yield f
    await f.stop()


async def test_the_snapshot_holds_the_latest_range_of_every_horizon(feed: WebSocketFeed) -> None:
    # Keyed by symbol alone, it held only the horizon published last (h=5, seq 4 here).
    for seq, horizon in [(1, 1), (2, 5), (3, 1), (4, 5)]:
        feed.publish("SPX", seq, range_json("SPX", seq), horizon)
    async with connect(feed.url) as ws:
        await ws.send(orjson.dumps({"type": "subscribe", "symbols": ["SPX"]}).decode())
        assert (await recv(ws))["type"] == "subscribed"
        snapshot = await recv(ws)
        assert [r["seq"] for r in snapshot["ranges"]] == [3, 4]


async def test_subscribe_ack_snapshot_then_updates_and_heartbeat(feed: WebSocketFeed) -> None:
    feed.publish("SPX", 1, range_json("SPX", 1), 1)
    async with connect(feed.url) as ws:
        await ws.send(orjson.dumps({"type": "subscribe", "symbols": ["SPX", "NDX"]}).decode())
        assert await recv(ws) == {"type": "subscribed", "symbols": ["NDX", "SPX"]}
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot"
        assert [r["seq"] for r in snapshot["ranges"]] == [1]
        feed.publish("SPX", 2, range_json("SPX", 2), 1)
        feed.publish("QQQ", 1, range_json("QQQ", 1), 1)  # not subscribed: never delivered
        feed.publish("NDX", 1, range_json("NDX", 1), 1)
        seen: list[tuple[str, int]] = []
        heartbeat: dict[str, Any] | None = None
        while len(seen) < 2 or heartbeat is None:
            msg = await recv(ws)
            assert msg["type"] in ("range", "heartbeat")
            if msg["type"] == "range":
                seen.append((msg["symbol"], msg["seq"]))
            else:
                heartbeat = msg
        assert seen == [("SPX", 2), ("NDX", 1)]
        assert heartbeat["seq"] in ({"SPX": 1}, {"SPX": 2}, {"NDX": 1, "SPX": 2})

        await ws.send('{"type": "unsubscribe", "symbols": ["SPX"]}')
        while (msg := await recv(ws))["type"] != "subscribed":
            pass
        assert msg["symbols"] == ["NDX"]


@pytest.mark.parametrize(
    ("request_text", "reason"),
    [
        ("{oops", "malformed JSON"),
        ('{"type": "dance"}', "unknown request type 'dance'"),
        ('{"type": "subscribe", "symbols": "SPX"}', "must be a list"),
    ],
)
async def test_bad_requests_get_error_messages(
    feed: WebSocketFeed, request_text: str, reason: str
) -> None:
    async with connect(feed.url) as ws:
        await ws.send(request_text)
        msg = await recv(ws)
        while msg["type"] == "heartbeat":
            msg = await recv(ws)
        assert msg["type"] == "error" and reason in msg["error"]
        await ws.send('{"type": "subscribe", "symbols": ["SPX"]}')  # still open
        while (msg := await recv(ws))["type"] != "subscribed":
            pass


async def test_slow_client_is_dropped_and_fast_client_gets_everything() -> None:
    feed = WebSocketFeed(queue_size=64, heartbeat_seconds=60)
    await feed.start()
    try:
        async with connect(feed.url) as fast, connect(feed.url, max_queue=1) as slow:
            for ws in (fast, slow):
                await ws.send('{"type": "subscribe", "symbols": ["SPX"]}')
                assert (await recv(ws))["type"] == "subscribed"
            # The slow client never reads: 30 MB of ranges fill its socket buffers, then its queue.
            received: list[int] = []

            async def read_fast() -> None:
                while len(received) < 300:
                    msg = await recv(fast)
                    if msg["type"] == "range":
                        received.append(msg["seq"])

            reader = asyncio.create_task(read_fast())
            for seq in range(1, 301):
                feed.publish("SPX", seq, range_json("SPX", seq, pad=100_000), 1)
                await asyncio.sleep(0.002)  # the engine's loop runs between publications
            await asyncio.wait_for(reader, 10)
            assert received == list(range(1, 301))
            assert feed.dropped_slow_clients == 1
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(slow.recv(), 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == SLOW_CLIENT_CLOSE_CODE
            assert "too slow" in closed.value.rcvd.reason
    finally:
        await feed.stop()


async def test_a_symbol_the_service_does_not_forecast_is_an_error_naming_the_served_ones() -> None:
    # Accepted silently, a subscription to "spx" waited for ranges that never came.
    feed = WebSocketFeed(heartbeat_seconds=60, symbols=["SPX", "NDX"])
    await feed.start()
    try:
        async with connect(feed.url) as ws:
            await ws.send('{"type": "subscribe", "symbols": ["spx", "SPX"]}')
            assert await recv(ws) == {
                "type": "error", "error": "unknown symbol(s) spx; served: NDX, SPX"
            }  # fmt: skip
            assert await recv(ws) == {"type": "subscribed", "symbols": ["SPX"]}
    finally:
        await feed.stop()
