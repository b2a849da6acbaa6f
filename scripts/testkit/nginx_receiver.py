"""A webhook receiver for benchmarks that costs little CPU: a real nginx on a
loopback port answering every request 204 at once (the body is read and
dropped), keep-alive without a request limit, and an access log of when each
`webhook-id` arrived. The Python receivers spend more CPU per request than
the service does per delivery, so on a machine of two cores they, not the
service, would set the rate.

    receiver = NginxReceiver(workdir)   # receiver.url, receiver.count
    receiver.arrivals()                 # [(webhook-id, arrival in ms since the epoch), ...]
    receiver.stop()
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
events {{ worker_connections 4096; }}
http {{
    log_format arrivals '$msec $http_webhook_id';
    access_log {dir}/access.log arrivals buffer=256k flush=100ms;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 204; }}
    }}
}}
"""


class NginxReceiver:
    def __init__(self, workdir, name="receiver"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.log = os.path.join(self.dir, "access.log")
        self._read, self._counted = 0, 0
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(dir=self.dir, port=self.port))
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([binary, "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}")
            try:
                if http("GET", self.url, timeout=1)[0] == 204:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the nginx receiver did not answer within 10 s")
            time.sleep(0.05)

    def _lines(self):
        """The log's lines of webhook requests (the readiness probe had no webhook-id: "-")."""
        try:
            with open(self.log, "rb") as f:
                return [line for line in f.read().splitlines() if not line.endswith(b" -")]
        except OSError:
            return []

    @property
    def count(self):
        """Webhook requests answered so far (the log is written at most 100 ms late). Reads only what
        the log gained since the last call, so that polling it costs little."""
        try:
            with open(self.log, "rb") as f:
                f.seek(self._read)
                gained = f.read()
        except OSError:
            return self._counted
        complete = gained[:gained.rfind(b"\n") + 1]
        self._read += len(complete)
        self._counted += sum(1 for line in complete.splitlines() if not line.endswith(b" -"))
        return self._counted

    def arrivals(self):
        """(webhook-id, arrival in milliseconds since the epoch) of every request answered."""
        out = []
        for line in self._lines():
            at, _, message_id = line.decode().partition(" ")
            out.append((message_id, float(at) * 1000))
        return out

    def stop(self):
        """Stops nginx once it has written its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
