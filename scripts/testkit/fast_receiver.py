"""A webhook receiver for benchmarks: asyncio on raw sockets (no
http.server), keep-alive, answers every POST 204 at once and records when
each message arrived and the `created_at` of its body, so that the time from
commit to the receiver's answer can be read off.

    receiver = FastReceiver()          # listens on 127.0.0.1, in a thread of its own
    receiver.count, receiver.latencies_ms(), receiver.arrivals
"""
import asyncio
import datetime
import re
import threading
import time

CREATED_AT = re.compile(rb'"created_at":"([^"]+)"')
RESPONSE = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


def _epoch_ms(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


class _Connection(asyncio.Protocol):
    def __init__(self, receiver):
        self.receiver = receiver
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            match = re.search(rb"content-length:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body = self.buffer[head_end + 4:end]
            self.buffer = self.buffer[end:]
            self.transport.write(RESPONSE)
            self.receiver.record(body)


class FastReceiver:
    def __init__(self):
        self.count = 0
        self.arrivals = []  # (receiver time in ms since the epoch, created_at in ms)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                self.loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, backlog=1024))
            self.port = self.server.sockets[0].getsockname()[1]
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait()
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def record(self, body):
        self.count += 1
        match = CREATED_AT.search(body)
        self.arrivals.append((time.time() * 1000, match.group(1) if match else None))

    def latencies_ms(self):
        """Receiver time minus the message's created_at (the event's time, set just before its commit)."""
        return [now - _epoch_ms(created.decode()) for now, created in self.arrivals if created]

    def reset(self):
        self.count = 0
        self.arrivals = []

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
