"""A TCP relay on loopback that a test controls, to play a network that
fails under open connections: connections can be made to hang (kept open
with nothing passing either way, as after a Wi-Fi or NAT change) or be
reset, and new ones refused. It runs an asyncio loop in a thread of its own.

    relay = Relay(upstream_port)
    relay.hang_all(refuse_new=True)   # the network is gone
    relay.accept_new()                # it is back; the hung connections stay hung
    relay.close()
"""
import asyncio
import threading

from .server import free_port


class Relay:
    def __init__(self, upstream_port, host="127.0.0.1"):
        self.host = host
        self.upstream_port = upstream_port
        self.port = free_port()
        self.base = f"http://{host}:{self.port}"
        self.accepted = 0
        self._live = set()  # (client writer, upstream writer) passing data
        self._hung = set()  # the same, no longer read on either side
        self._server = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay", daemon=True)
        self._thread.start()
        self._call(self._listen())

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _listen(self):
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)

    async def _serve(self, reader, writer):
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._live.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except asyncio.CancelledError:
            pass  # closing the relay; ending quietly spares asyncio's callback a cancelled task
        self._live.discard(pair)

    @staticmethod
    async def _pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    async def _hang_all(self, refuse_new):
        if refuse_new and self._server is not None:
            self._server.close()
            self._server = None
        for pair in self._live:
            # Neither socket is read any more: the pipes wait forever, nothing
            # passes, and neither end hears of a close.
            for w in pair:
                w.transport.pause_reading()
        self._hung |= self._live
        self._live = set()

    def hang_all(self, refuse_new=False):
        """Every open connection stops passing data but stays open; with
        refuse_new, new connections are refused (nothing listens any more)."""
        self._call(self._hang_all(refuse_new))

    def accept_new(self):
        """Listens again on the same port; hung connections stay hung."""
        if self._server is None:
            self._call(self._listen())

    async def _reset_all(self):
        for pair in self._live | self._hung:
            for w in pair:
                w.transport.abort()
        self._live, self._hung = set(), set()

    def reset_all(self):
        """Resets every connection, hung or not."""
        self._call(self._reset_all())

    def close(self):
        async def shutdown():
            if self._server is not None:
                self._server.close()
                self._server = None
            await self._reset_all()
            # The pipes of hung connections wait forever: end them here.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self._call(shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
