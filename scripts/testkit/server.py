"""The payment-status binary on a loopback port, for scripts: start it, wait
for /healthz, read its metrics and access log, kill -9 and restart it on the
same port and database, stop it.

    server = PaymentServer(workdir, env={"PAYMENT_MAX_STREAMS": "3"})
    server.wait_healthy()
    order = server.create_order()
    server.transition(order["id"], "processing")
    server.stop()
"""
from http.client import HTTPConnection
import json
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PAYMENT_STATUS_BIN", os.path.join(ROOT, ".build/debug/payment-status"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=10):
    """(status, headers, body text) of one request; HTTP errors are answers, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as res:
            return res.status, res.headers, res.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode("utf-8", "replace")


class PaymentServer:
    """`payment-status serve` on 127.0.0.1 with its own SQLite file in `workdir`.

    `env` adds settings (PAYMENT_MAX_STREAMS, ...); the API token is chosen
    here (or given, for instances sharing a database) and kept in `token`.
    The log is JSON lines, one per request among them (benchmarks pass
    LOG_LEVEL=notice to leave the access log out). `binary` picks another
    build than PAYMENT_STATUS_BIN's (benchmarks run the release one).
    """

    def __init__(self, workdir, env=None, demo=False, name=None, database=None, token=None, binary=None):
        self.port = free_port()
        self.name = name or f"server-{self.port}"
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = token or secrets.token_urlsafe(24)
        self.log_path = os.path.join(workdir, f"{self.name}.log")
        # A SQLite file of its own, or a database given (a postgres:// URL shared by instances).
        self.db = database or os.path.join(workdir, f"{self.name}.sqlite")
        self.args = [binary or BIN, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--database", self.db,
                     "--migrations", os.path.join(ROOT, "migrations"), "--log-format", "json"]
        if demo:
            self.args.append("--demo")
        self.env = dict(os.environ, PAYMENT_API_TOKEN=self.token, **(env or {}))
        if not demo:
            self.env.pop("PAYMENT_DEMO", None)
        self.log = open(self.log_path, "ab")
        self.proc = None
        self.start()

    def start(self):
        """Starts the process (again, after kill_9: same port, same database)."""
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def wait_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.tail()}")
            try:
                if http("GET", self.base + "/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"no 200 from {self.name}'s /healthz within {timeout}s; log:\n{self.tail()}")

    def kill_9(self):
        self.proc.kill()
        self.proc.wait()

    def terminate(self, timeout=20):
        """SIGTERM and wait for the exit: (exit status, seconds it took)."""
        started = time.monotonic()
        self.proc.terminate()
        self.proc.wait(timeout)
        return self.proc.returncode, time.monotonic() - started

    def restart(self):
        """Starts it again after it exited (same port, same database) and waits for /healthz."""
        self.log.close()
        self.log = open(self.log_path, "ab")
        self.start()
        self.wait_healthy()

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    # --- the merchant's API, with the bearer token

    def connection(self, timeout=30):
        """A keep-alive connection of one's own, for loops that send many requests."""
        return HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def api(self, method, path, body=None):
        status, _, text = http(method, self.base + path, body, {"Authorization": f"Bearer {self.token}"})
        return status, (json.loads(text) if text else None)

    def create_order(self, amount=1999, currency="EUR"):
        status, order = self.api("POST", "/v1/orders", {"amount": amount, "currency": currency})
        assert status == 201, f"POST /v1/orders answered {status}: {order}"
        return order

    def transition(self, order_id, status, reason=None):
        body = {"status": status} if reason is None else {"status": status, "reason": reason}
        code, answer = self.api("POST", f"/v1/orders/{order_id}/transitions", body)
        assert code == 200, f"transition of {order_id} to {status} answered {code}: {answer}"
        return answer

    # --- what it reports

    def metric(self, name):
        """The sum of every sample of `name` in /metrics (0 when it is absent)."""
        _, _, text = http("GET", self.base + "/metrics", timeout=5)
        total = 0.0
        for line in text.splitlines():
            m = re.match(r"^" + re.escape(name) + r"(\{[^}]*\})?\s+(\S+)", line)
            if m:
                total += float(m.group(2))
        return total

    def requests(self, ignore=("/metrics", "/healthz")):
        """Access-log entries so far, but those of the routes in `ignore` (which the tests poll)."""
        return [entry for entry in self.log_entries("request") if entry.get("route") not in ignore]

    def log_entries(self, message):
        """The JSON log lines so far whose message is `message`, across restarts."""
        self.log.flush()
        entries = []
        with open(self.log_path, "rb") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("message") == message:
                    entries.append(entry)
        return entries

    def tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"
