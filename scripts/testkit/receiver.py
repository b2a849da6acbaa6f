"""A webhook receiver on a loopback port, for scripts: records every delivery
(headers, raw body, when it came) and answers what the test tells it to,
so a test can make an endpoint fail on demand.

    receiver = Receiver()
    receiver.answer = lambda delivery: 500 if delivery.order_id == "ord_x" else 204
    ...
    receiver.deliveries          # every request, in arrival order
    receiver.stop()
"""
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Delivery:
    """One request the service made."""

    def __init__(self, path, headers, body):
        self.path = path
        self.headers = headers
        self.body = body
        self.received_at = time.time()
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None

    @property
    def webhook_id(self):
        return self.headers.get("webhook-id")

    @property
    def event(self):
        return (self.json or {}).get("data", {}).get("event", {})

    @property
    def order(self):
        return (self.json or {}).get("data", {}).get("order", {})

    @property
    def order_id(self):
        return self.event.get("order_id")

    @property
    def seq(self):
        return self.event.get("seq")


class Receiver:
    """An HTTP server on 127.0.0.1 that records deliveries and answers
    `answer(delivery)`: a status code, or (status, extra headers). Given
    `tls=(certificate file, key file)` it speaks https, and its URL names
    localhost (the name its certificate is for)."""

    def __init__(self, answer=None, tls=None):
        self.deliveries = []
        self.lock = threading.Lock()
        self.answer = answer or (lambda delivery: 204)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender went away mid-request (a kill -9 between the head and
                    # the body): nothing was delivered, and nobody is left to answer.
                    self.close_connection = True
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                delivery = Delivery(self.path, headers, body)
                with receiver.lock:
                    receiver.deliveries.append(delivery)
                answer = receiver.answer(delivery)
                status, extra = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a sender killed mid-request resets its connection: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.handshakes_refused = 0
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            listening = self.server.socket
            self.server.socket = context.wrap_socket(listening, server_side=True, do_handshake_on_connect=False)
            original = self.server.get_request

            def get_request():
                connection, address = original()
                try:
                    connection.do_handshake()
                except (ssl.SSLError, OSError):
                    receiver.handshakes_refused += 1
                    connection.close()
                    raise
                return connection, address

            self.server.get_request = get_request
            self.url = f"https://localhost:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.deliveries)

    def wait_for(self, predicate, timeout=30, what="the deliveries"):
        """Waits until `predicate(deliveries)` is true; returns the deliveries."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            deliveries = self.snapshot()
            if predicate(deliveries):
                return deliveries
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {len(self.snapshot())} deliveries")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
