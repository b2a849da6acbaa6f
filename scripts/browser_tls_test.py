#!/usr/bin/env python3
"""Twelve tabs watching orders over HTTPS in a real browser (headless Chromium via Selenium).

Starts the server binary with a throwaway self-signed certificate (made with
`openssl`), so that its port serves HTTPS with HTTP/2, and a checkout page on
an origin of its own (plain HTTP, like scripts/browser_test.py's) that imports
the browser client from the service, https://127.0.0.1:<port>/client/payment-status.js.
Then, in one Chromium:

- twelve tabs each watch one order with `watchPayment`: over HTTP/1.1 a
  browser holds at most six connections to one origin, so the last six
  streams could not open; over HTTP/2 all twelve are open at once, and
  the server sees them on one or two connections (Chromium keeps separate
  pools for credentialed and uncredentialed requests), not twelve;
- every request Chromium made to the service went over `h2` (the protocol
  of each response, from Chromium's network log), and a page of the
  service's own origin reports `nextHopProtocol` = `h2`;
- each tab receives every event of its order (seq 1, 2, 3, in order) and
  ends on the terminal one, after which no tab holds a connection, a timer
  or a request, and the server holds no stream.

Chromium is started with --ignore-certificate-errors: the certificate is
self-signed. Run it through scripts/browser-tls-test, which installs what is
missing (Debian's chromium and chromium-driver, the selenium package).
"""
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testkit.wait import wait_until  # noqa: E402
from testkit.pages import PageServer  # noqa: E402
from testkit.server import PaymentServer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABS = 12
# The service's certificate is self-signed: this script's own requests to it
# (creating orders, reading metrics) do not verify it either.
ssl._create_default_https_context = ssl._create_unverified_context

passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
    except Exception as error:  # a failed assertion or a timeout alike
        failed += 1
        print(f"FAIL {name}: {str(error) or type(error).__name__}", flush=True)
        if not isinstance(error, AssertionError):
            traceback.print_exc()
        return False
    passed += 1
    print(f"ok   {name}", flush=True)
    return True


def make_certificate(workdir):
    certificate, key = os.path.join(workdir, "server.crt"), os.path.join(workdir, "server.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=payment-status browser test", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", certificate],
        check=True, capture_output=True)
    return certificate, key


def start_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors",
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows", "--window-size=1000,800"]:
        options.add_argument(arg)
    # Network.* events of every tab: each response's protocol and connection.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def established_connections(port):
    """TCP connections to the server's port, as the kernel sees them."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def main():
    workdir = tempfile.mkdtemp(prefix="payment-status-browser-tls-")
    driver = None
    server = None
    pages = None
    try:
        certificate, key = make_certificate(workdir)
        pages = PageServer(os.path.join(ROOT, "scripts", "browser"), {})
        server = PaymentServer(workdir, env={
            "PAYMENT_TLS_CERTIFICATE": certificate, "PAYMENT_TLS_KEY": key, "PAYMENT_CORS_ORIGINS": pages.origin,
        })
        server.base = f"https://127.0.0.1:{server.port}"
        server.wait_healthy()
        orders = [server.create_order() for _ in range(TABS)]
        module = f"{server.base}/client/payment-status.js"
        driver = start_browser()

        tabs = []

        def open_tabs():
            for index, order in enumerate(orders):
                if index > 0:
                    driver.switch_to.new_window("tab")
                query = f"?module={urllib.parse.quote(module, safe='')}&stream={urllib.parse.quote(order['stream_url'], safe='')}"
                driver.get(f"{pages.origin}/watch.html{query}")
                tabs.append(driver.current_window_handle)
            for handle in tabs:
                driver.switch_to.window(handle)
                wait_until("the page to load the client", lambda: driver.execute_script("return window.watch && window.watch.loaded"), 20)
                state = driver.execute_script("return window.watch")
                assert state["importError"] is None, f"the module did not load: {state['importError']}"

        def seen(handle):
            driver.switch_to.window(handle)
            return driver.execute_script("return window.watch.watches[0]")

        def all_streams_open():
            # Every tab has its order's current state, and the server holds twelve streams at once.
            for handle in tabs:
                wait_until("the first event in every tab", lambda: len(seen(handle)["events"]) >= 1, 30)
            wait_until("twelve open streams", lambda: server.metric("payment_status_open_streams") == TABS, 20)
            connections = established_connections(server.port)
            assert 1 <= len(connections) <= 2, f"{TABS} streams on {len(connections)} connections: {connections}"
            print(f"     {TABS} streams on {len(connections)} TCP connection(s)", flush=True)

        def every_request_was_h2():
            protocols = {}
            for handle in tabs:
                driver.switch_to.window(handle)
                for entry in driver.get_log("performance"):
                    message = json.loads(entry["message"])["message"]
                    if message.get("method") != "Network.responseReceived":
                        continue
                    response = message["params"]["response"]
                    if response["url"].startswith(server.base):
                        protocols[response["url"].split("?")[0]] = response.get("protocol")
            assert any("/events" in url for url in protocols), f"no stream response in the network log: {protocols}"
            assert set(protocols.values()) == {"h2"}, f"protocols seen: {protocols}"
            streams = sum(1 for url in protocols if "/events" in url)
            print(f"     {len(protocols)} URLs of the service in the network log ({streams} streams), all h2", flush=True)
            driver.switch_to.new_window("tab")
            driver.get(f"{server.base}/healthz")
            protocol = driver.execute_script("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
            assert protocol == "h2", f"nextHopProtocol of the service's own page: {protocol!r}"
            driver.close()
            driver.switch_to.window(tabs[0])

        def every_tab_reaches_the_end():
            for order in orders:
                server.transition(order["id"], "processing")
            for order in orders:
                server.transition(order["id"], "succeeded")
            for handle, order in zip(tabs, orders):
                watch = wait_until(f"order {order['id']} to end in its tab", lambda: seen(handle)["settled"] and seen(handle), 30)
                assert watch["error"] is None, f"{order['id']}: {watch['error']}"
                assert watch["result"] == {"seq": 3, "status": "succeeded"}, f"{order['id']}: {watch['result']}"
                assert [e["seq"] for e in watch["events"]] == [1, 2, 3], f"{order['id']}: {watch['events']}"

        def nothing_held_afterwards():
            for handle in tabs:
                driver.switch_to.window(handle)
                held = wait_until("the tab to let go", lambda: (lambda h: h if h == {"timers": 0, "eventSources": 0, "fetches": 0} else None)(
                    driver.execute_script("return window.held()")), 10)
                assert held, held
            wait_until("no open stream on the server", lambda: server.metric("payment_status_open_streams") == 0, 10)

        ok = check("twelve tabs load the client from the HTTPS service", open_tabs)
        ok = ok and check(f"{TABS} streams open at once, on one or two connections", all_streams_open)
        if ok:
            check("every response from the service came over h2 (nextHopProtocol h2)", every_request_was_h2)
            check("each tab sees seq 1, 2, 3 and ends on the terminal event", every_tab_reaches_the_end)
            check("afterwards no tab holds anything and the server holds no stream", nothing_held_afterwards)
    finally:
        if driver:
            driver.quit()
        if server:
            server.stop()
        if pages:
            pages.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
