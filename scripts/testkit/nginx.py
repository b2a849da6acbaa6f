"""A real nginx on a loopback port in front of the service, for scripts.

Modes (switched with `set_mode`, by a reload):
- "pass": a plain reverse proxy that lets the stream through;
- "buffering": a proxy that holds the stream back, as some do in front of
  checkout pages: `proxy_buffering on` with the service's
  `X-Accel-Buffering: no` ignored, and gzip over text/event-stream;
- "down": its upstream is a port nobody listens on, so it answers 502.
After a reload the old workers close their connections within a second, so
open streams are cut as a proxy restart would cut them.
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
events {{ worker_connections 512; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 120s;
{extra}
        }}
    }}
}}
"""

MODES = {
    "pass": "            proxy_buffering off;",
    "buffering": """            proxy_buffering on;
            proxy_ignore_headers X-Accel-Buffering;
            gzip on;
            gzip_proxied any;
            gzip_min_length 0;
            gzip_types text/event-stream application/json;""",
    "down": "            proxy_buffering off;",
}


class Nginx:
    def __init__(self, workdir, upstream_port, mode="pass", name="nginx"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.upstream_port = upstream_port
        self.dead_port = free_port()  # nothing listens there
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.mode = None
        self._write(mode)
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([binary, "-p", self.dir, "-c", self.conf, "-e", os.path.join(self.dir, "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait_for(mode)

    def _write(self, mode):
        upstream = self.dead_port if mode == "down" else self.upstream_port
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(dir=self.dir, port=self.port, upstream=upstream, extra=MODES[mode]))
        self.mode = mode

    def _wait_for(self, mode, timeout=10):
        """Until /healthz through it answers as the mode says (502 when down)."""
        want = 502 if mode == "down" else 200
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
        self._write(mode)
        self.proc.send_signal(signal.SIGHUP)
        self._wait_for(mode)

    def requests(self):
        """Lines in its access log so far (one per request answered)."""
        try:
            with open(os.path.join(self.dir, "access.log"), "rb") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return "(no error log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
