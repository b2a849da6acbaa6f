"""A checkout page's origin for browser tests: serves the files of a folder
on its own loopback port (so the service is another origin, as for a real
shop) and plays the merchant's back end for the page: `POST
/refresh?server=<name>&order=<id>` asks that service for a fresh stream
token with the API token the page never sees. Every request is counted.
"""
import json
import threading
import time
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from .server import free_port


class PageServer:
    def __init__(self, folder, servers):
        """`servers`: name → PaymentServer, for /refresh."""
        self.servers = servers
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.log = []  # (monotonic time, method, path)
        pages = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=folder, **kwargs)

            def log_message(self, *args):
                pass

            def send_head(self):
                pages.log.append((time.monotonic(), "GET", self.path))
                return super().send_head()

            def do_POST(self):
                pages.log.append((time.monotonic(), "POST", self.path))
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                server = pages.servers.get((query.get("server") or [""])[0])
                order = (query.get("order") or [""])[0]
                if url.path != "/refresh" or server is None or not order:
                    self.send_error(404)
                    return
                status, answer = server.api("POST", f"/v1/orders/{urllib.parse.quote(order)}/stream-token")
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="pages", daemon=True)
        self.thread.start()

    def count(self, path_prefix="/"):
        return sum(1 for _, _, path in self.log if path.startswith(path_prefix))

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
