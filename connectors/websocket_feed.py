"""The live WebSocket feed of ranges (``websockets``, asyncio API).

Protocol (every message is a JSON object with a ``type``):

client → server
    ``{"type": "subscribe", "symbols": ["SPX", ...]}``,
    ``{"type": "unsubscribe", "symbols": [...]}``
server → client
    ``{"type": "subscribed", "symbols": [...]}`` — the client's whole subscription, after
    every (un)subscribe;
    ``{"type": "snapshot", "ranges": [<range>, ...]}`` — the latest range of each newly
    subscribed symbol that has one, right after the acknowledgement;
    ``{"type": "range", ...<range fields>}`` — every update, in ``seq`` order per symbol;
    ``{"type": "heartbeat", "seq": {"SPX": 41, ...}}`` — the last ``seq`` published per
    subscribed symbol, every ``heartbeat_seconds``, so a client can detect gaps and a
    dead link;
    ``{"type": "error", "error": "..."}`` — a bad request (malformed, or a symbol the
    service does not forecast: the others of the request still count); the connection
    stays open.

Each client has a bounded queue drained by its own writer task. Publishing never waits:
a client whose queue is full is closed (code 1008, reason "too slow: ...") and the others
go on unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)

SLOW_CLIENT_CLOSE_CODE = 1008


@dataclass(eq=False)
class _Client:
    conn: ServerConnection
    queue: asyncio.Queue[bytes]
    symbols: set[str] = field(default_factory=set)
    closing: bool = False


class WebSocketFeed:
    """Fan-out of published ranges to subscribed WebSocket clients."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        queue_size: int = 1000,
        heartbeat_seconds: float = 5.0,
        symbols: Collection[str] | None = None,
    ) -> None:
        """``symbols``: the symbols the service forecasts; a subscription to any other is
        answered with an error naming them (None: any symbol is accepted)."""
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self._host, self._port = host, port
        self._queue_size = queue_size
        self._served = None if symbols is None else frozenset(symbols)
        self._heartbeat_seconds = heartbeat_seconds
        self._clients: set[_Client] = set()
        # symbol -> horizon -> latest range JSON: a snapshot holds every horizon's range
        # (keyed by symbol alone it held only the last horizon published).
        self._latest: dict[str, dict[int, bytes]] = {}
        self._last_seq: dict[str, int] = {}
        self._server: Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.dropped_slow_clients = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the feed is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def listening(self) -> bool:
        """The port is bound (:meth:`start` done)."""
        return self._server is not None

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}"

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        # compression=None: ranges are small, deflate would cost more CPU than it saves.
        self._server = await serve(self._handle, self._host, self._port, compression=None)
        self._heartbeat = asyncio.create_task(self._beat(), name="websocket-heartbeat")

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def publish(self, symbol: str, seq: int, range_json: bytes, horizon: int) -> None:
        """Queue a range (the JSON of the range message) for every subscriber; never waits."""
        self._latest.setdefault(symbol, {})[horizon] = range_json
        self._last_seq[symbol] = seq
        message = b'{"type":"range",' + range_json[1:]
        for client in list(self._clients):
            if symbol in client.symbols:
                self._offer(client, message)

    # -- per client -------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        client = _Client(conn, asyncio.Queue(maxsize=self._queue_size))
        self._clients.add(client)
        writer = asyncio.create_task(self._write(client), name="websocket-writer")
        try:
            async for raw in conn:
                self._on_request(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self, client: _Client) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                message = await client.queue.get()
                await client.conn.send(message, text=True)

    def _on_request(self, client: _Client, raw: str | bytes) -> None:
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self._error(client, f"malformed JSON: {exc}")
            return
        kind = request.get("type") if isinstance(request, dict) else None
        if kind not in ("subscribe", "unsubscribe"):
            self._error(client, f"unknown request type {kind!r}; allowed: subscribe, unsubscribe")
            return
        symbols = request.get("symbols")
        if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
            self._error(client, "field 'symbols' must be a list of non-empty strings")
            return
        if kind == "subscribe":
            unknown = [s for s in dict.fromkeys(symbols) if not self._serves(s)]
            if unknown:
                # Silently accepted, a typo ("spx") waited for ranges that never came.
                served = ", ".join(sorted(self._served or ()))
                self._error(client, f"unknown symbol(s) {', '.join(unknown)}; served: {served}")
            new = [s for s in dict.fromkeys(symbols) if s not in client.symbols and self._serves(s)]
            client.symbols.update(new)
        else:
            new = []
            client.symbols.difference_update(symbols)
        self._offer(client, _dump({"type": "subscribed", "symbols": sorted(client.symbols)}))
        if new:
            snapshot = [
                message for s in new for _, message in sorted(self._latest.get(s, {}).items())
            ]
            self._offer(client, b'{"type":"snapshot","ranges":[' + b",".join(snapshot) + b"]}")

    def _serves(self, symbol: str) -> bool:
        return self._served is None or symbol in self._served

    def _error(self, client: _Client, reason: str) -> None:
        self._offer(client, _dump({"type": "error", "error": reason}))

    def _offer(self, client: _Client, message: bytes) -> None:
        if client.closing:
            return
        try:
            client.queue.put_nowait(message)
        except asyncio.QueueFull:
            client.closing = True
            self.dropped_slow_clients += 1
            reason = f"too slow: {self._queue_size} messages queued"
            log.warning("closing WebSocket client %s: %s", client.conn.remote_address, reason)
            self._clients.discard(client)
            asyncio.get_running_loop().create_task(
                client.conn.close(SLOW_CLIENT_CLOSE_CODE, reason)
            )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            for client in list(self._clients):
                seqs = {s: self._last_seq[s] for s in sorted(client.symbols) if s in self._last_seq}
                self._offer(client, _dump({"type": "heartbeat", "seq": seqs}))


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj)
