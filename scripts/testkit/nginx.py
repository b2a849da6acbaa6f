"""A real nginx on a loopback port, for scripts: in front of the service, or
as a webhook receiver that costs little CPU.

Modes (switched with `set_mode`, by a reload):
- "pass": a plain reverse proxy that lets the stream through;
- "buffering": a proxy that holds the stream back, as some do in front of
  checkout pages: `proxy_buffering on` with the service's
  `X-Accel-Buffering: no` ignored, and gzip over text/event-stream;
- "down": its upstream is a port nobody listens on, so it answers 502;
- "receiver": no upstream; every request is answered 204 at once (the body
  read and dropped), keep-alive without a request limit, and the access log
  records when each `webhook-id` arrived. The Python receivers spend more CPU
  per request than the service does per delivery, so on a machine of two
  cores they, not the service, would set a benchmark's rate.
After a reload the old workers close their connections within a second, so
open streams are cut as a proxy restart would cut them.

    proxy = Nginx(workdir, server.port)          # proxy.base, proxy.requests()
    receiver = Nginx(workdir, mode="receiver")   # receiver.url, receiver.count, receiver.arrivals()
"""
import os
import shutil
import signal
import subprocess
import time

from .server import free_port, http

CONFIG = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_shutdown_timeout 1s;
events {{ worker_connections 4096; }}
http {{
    log_format arrivals '$msec $http_webhook_id';
    access_log {dir}/access.log {log};
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
{location}
        }}
    }}
}}
"""

PROXY = """            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 120s;
"""

MODES = {
    "pass": PROXY + "            proxy_buffering off;",
    "buffering": PROXY + """            proxy_buffering on;
            proxy_ignore_headers X-Accel-Buffering;
            gzip on;
            gzip_proxied any;
            gzip_min_length 0;
            gzip_types text/event-stream application/json;""",
    "down": PROXY + "            proxy_buffering off;",
    # Keep-alive without a request limit: the service's pooled connections stay open for the whole run.
    "receiver": """            keepalive_requests 10000000;
            keepalive_timeout 300s;
            return 204;""",
}


class Nginx:
    def __init__(self, workdir, upstream_port=None, mode="pass", name="nginx"):
        if (upstream_port is None) != (mode == "receiver"):
            raise ValueError("a proxy needs an upstream port; a receiver has none")
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + "/hooks"
        self.upstream_port = upstream_port
        self.dead_port = free_port()  # nothing listens there
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.log = os.path.join(self.dir, "access.log")
        self._read, self._counted = 0, 0
        self.mode = None
        self._write(mode)
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([binary, "-p", self.dir, "-c", self.conf, "-e", os.path.join(self.dir, "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait_for(mode)

    def _write(self, mode):
        upstream = self.dead_port if mode == "down" else self.upstream_port
        # The receiver's log is buffered (written at most 100 ms late): a line per request costs it little.
        log = "arrivals buffer=256k flush=100ms" if mode == "receiver" else "combined"
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(dir=self.dir, port=self.port, log=log, location=MODES[mode].format(upstream=upstream)))
        self.mode = mode

    def _wait_for(self, mode, timeout=10):
        """Until it answers as the mode says: /healthz through it 200 (502 when down), 204 as a receiver."""
        want = {"down": 502, "receiver": 204}.get(mode, 200)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}: {self.error_log()}")
            try:
                if http("GET", self.base + "/healthz", timeout=1)[0] == want:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"nginx did not answer {want} in mode {mode} within {timeout}s: {self.error_log()}")

    def set_mode(self, mode):
        if (mode == "receiver") != (self.mode == "receiver"):
            raise ValueError("a proxy cannot become a receiver, nor a receiver a proxy")
        self._write(mode)
        self.proc.send_signal(signal.SIGHUP)
        self._wait_for(mode)

    def requests(self):
        """Lines in its access log so far (one per request answered)."""
        try:
            with open(self.log, "rb") as f:
                return f.read().splitlines()
        except OSError:
            return []

    @property
    def count(self):
        """Webhook requests answered so far (requests without a webhook-id, such as the readiness
        probe, are logged as "-"). Reads only what the log gained since the last call, so that
        polling it costs little."""
        try:
            with open(self.log, "rb") as f:
                f.seek(self._read)
                gained = f.read()
        except OSError:
            return self._counted
        complete = gained[:gained.rfind(b"\n") + 1]
        self._read += len(complete)
        self._counted += sum(1 for line in complete.splitlines() if self._is_webhook(line))
        return self._counted

    def arrivals(self):
        """(webhook-id, arrival in milliseconds since the epoch) of every webhook request answered."""
        out = []
        for line in filter(self._is_webhook, self.requests()):
            at, _, message_id = line.decode().partition(" ")
            out.append((message_id, float(at) * 1000))
        return out

    @staticmethod
    def _is_webhook(line):
        """A receiver's log line of a webhook request (the readiness probe has no webhook-id: "-")."""
        return not line.endswith(b" -")

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return "(no error log)"

    def stop(self):
        """Stops nginx once it has written its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
