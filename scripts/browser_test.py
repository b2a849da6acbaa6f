#!/usr/bin/env python3
"""The demo checkout page in a real browser (headless Chromium via Selenium).

Starts the server binary with `serve --demo` on a free loopback port and a
SQLite file in a temporary folder, pays once with approval and once with a
decline as a person would, checks what the page shows, checks that the
browser does not keep reconnecting to the finished streams, and that without
`--demo` the page explains how to turn the demo on. Run it through
scripts/browser-test, which installs what is missing.
"""
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("PAYMENT_STATUS_BIN", ".build/debug/payment-status")
FINAL_TIMEOUT = 20  # seconds for a payment to reach its final status
QUIET_SECONDS = 5  # longer than the stream's `retry: 3000`

passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
    except Exception as error:  # a failed assertion or a timeout alike
        failed += 1
        detail = str(error) or type(error).__name__
        print(f"FAIL {name}: {detail}", flush=True)
        if not isinstance(error, AssertionError):
            traceback.print_exc()
        return False
    passed += 1
    print(f"ok   {name}", flush=True)
    return True


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as res:
        return res.status, res.read().decode("utf-8", "replace")


class Server:
    """The payment-status binary on 127.0.0.1 with its own SQLite file."""

    def __init__(self, workdir, demo):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"server-{self.port}.log")
        db = os.path.join(workdir, f"db-{self.port}.sqlite")
        args = [BIN, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--database", db, "--migrations", "migrations"]
        if demo:
            args.insert(2, "--demo")
        env = dict(os.environ, PAYMENT_API_TOKEN=secrets.token_urlsafe(24))
        env.pop("PAYMENT_DEMO", None)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def wait_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}; log:\n{self.tail()}")
            try:
                if http_get(self.base + "/healthz", timeout=1)[0] == 200:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"no 200 from /healthz within {timeout}s; log:\n{self.tail()}")

    def metric(self, name):
        """The sum of every sample of `name` in /metrics (0 when it is absent)."""
        _, text = http_get(self.base + "/metrics")
        total, seen = 0.0, False
        for line in text.splitlines():
            m = re.match(r"^" + re.escape(name) + r"(\{[^}]*\})?\s+(\S+)", line)
            if m:
                total += float(m.group(2))
                seen = True
        return total if seen else 0.0

    def tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_browser(workdir):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=900,1000", f"--user-data-dir={os.path.join(workdir, 'chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver",
                      log_output=os.path.join(workdir, "chromedriver.log"))
    return webdriver.Chrome(options=options, service=service)


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()


def pay(driver, button_id):
    """Clicks a pay button as a person would and waits for the final status of that new order."""
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, button_id).is_enabled())
    before = driver.execute_script("return window.demo ? window.demo.orderId : null")
    driver.find_element(By.ID, button_id).click()
    WebDriverWait(driver, FINAL_TIMEOUT).until(lambda d: d.execute_script(
        "const s = document.getElementById('status');"
        "return !!window.demo && window.demo.orderId && window.demo.orderId !== arguments[0]"
        " && s.dataset.final === 'true';", before))
    return driver.execute_script("return window.demo")


def timeline(driver):
    return [(li.get_attribute("data-seq"), li.get_attribute("data-status"))
            for li in driver.find_elements(By.CSS_SELECTOR, "#timeline li")]


def severe_console_errors(driver):
    try:
        return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    except Exception:
        return []


def main():
    global failed
    os.chdir(ROOT)
    workdir = tempfile.mkdtemp(prefix="payment-status-browser-")
    shots = tempfile.mkdtemp(prefix="payment-status-screens-")
    server = off_server = driver = None
    try:
        server = Server(workdir, demo=True)
        if not check("server starts with --demo and answers /healthz", server.wait_healthy):
            return
        driver = start_browser(workdir)
        driver.get(server.base + "/")

        def page_loads():
            assert driver.find_element(By.ID, "pay-approve").text.strip() == "Pay — approve"
            assert driver.find_element(By.ID, "pay-decline").text.strip() == "Pay — decline"
            assert not driver.find_elements(By.CSS_SELECTOR, "input[type=password]"), "the page asks for a secret"
        check("page shows the checkout card and both pay buttons", page_loads)

        def approve():
            demo = pay(driver, "pay-approve")
            assert text(driver, "status") == "succeeded", f"badge shows {text(driver, 'status')!r}"
            assert "succeeded" in text(driver, "result"), f"result shows {text(driver, 'result')!r}"
            seen = [s for _, s in timeline(driver)]
            assert seen == ["initiated", "processing", "succeeded"], f"timeline {timeline(driver)}"
            seqs = [int(q) for q, _ in timeline(driver)]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"timeline seqs {seqs}"
            assert demo["final"] == "succeeded", f"window.demo.final {demo['final']!r}"
            assert demo["readyState"] == 2, f"EventSource readyState {demo['readyState']} (2 is CLOSED)"
            assert [e["status"] for e in demo["events"]] == seen, f"window.demo.events {demo['events']}"
            assert all(driver.find_element(By.ID, b).is_enabled() for b in ("pay-approve", "pay-decline")), \
                "buttons stay disabled after the payment ended"
            path = os.path.join(shots, "approved.png")
            driver.save_screenshot(path)
            print(f"     screenshot: {path}")
        check("Pay — approve: initiated → processing → succeeded, stream closed", approve)

        def decline():
            demo = pay(driver, "pay-decline")
            assert text(driver, "status") == "failed", f"badge shows {text(driver, 'status')!r}"
            result = text(driver, "result")
            assert "failed" in result and "card_declined" in result, f"result shows {result!r}"
            seen = [s for _, s in timeline(driver)]
            assert seen == ["initiated", "processing", "failed"], f"timeline {timeline(driver)} (not reset?)"
            assert demo["final"] == "failed", f"window.demo.final {demo['final']!r}"
            assert demo["readyState"] == 2, f"EventSource readyState {demo['readyState']} (2 is CLOSED)"
            assert demo["events"][-1].get("reason") == "card_declined", f"last event {demo['events'][-1]}"
            path = os.path.join(shots, "declined.png")
            driver.save_screenshot(path)
            print(f"     screenshot: {path}")
        check("Pay — decline: initiated → processing → failed with card_declined", decline)

        def console_clean():
            errors = severe_console_errors(driver)
            assert not errors, f"{errors}"
        check("no errors in the browser console", console_clean)

        def no_reconnect_loop():
            first = server.metric("payment_status_stream_requests_total")
            assert first >= 2, f"payment_status_stream_requests_total is {first}, expected at least the 2 streams"
            time.sleep(QUIET_SECONDS)
            second = server.metric("payment_status_stream_requests_total")
            assert second == first, f"stream requests grew from {first:g} to {second:g} in {QUIET_SECONDS}s: reconnect loop"
            open_now = server.metric("payment_status_open_streams")
            assert open_now == 0, f"payment_status_open_streams is {open_now:g}"
        check(f"no stream requests in the {QUIET_SECONDS}s after both payments ended, no open streams",
              no_reconnect_loop)

        off_server = Server(workdir, demo=False)

        def demo_off():
            off_server.wait_healthy()
            driver.get(off_server.base + "/")
            driver.find_element(By.ID, "pay-approve").click()
            WebDriverWait(driver, 10).until(lambda d: "serve --demo" in text(d, "result"))
            assert "off" in text(driver, "result"), f"result shows {text(driver, 'result')!r}"
            assert driver.find_element(By.ID, "pay-approve").is_enabled(), "buttons stay disabled"
            assert not driver.find_elements(By.CSS_SELECTOR, "#timeline li"), "timeline shows events"
            path = os.path.join(shots, "demo-off.png")
            driver.save_screenshot(path)
            print(f"     screenshot: {path}")
        check("without --demo the page says how to turn the demo on", demo_off)
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
        for s in (server, off_server):
            if s is not None:
                s.stop()
                if failed:
                    print(f"--- server log ({s.base}) ---\n{s.tail()}")
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"screenshots: {shots}")
        print(f"{passed} passed, {failed} failed")


if __name__ == "__main__":
    main()
    sys.exit(1 if failed else 0)
