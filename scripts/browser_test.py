#!/usr/bin/env python3
"""The browser client and the demo checkout page in a real browser (headless
Chromium via Selenium).

First the demo page (`serve --demo`): pays once approved and once declined as
a person would, checks what the page shows, that the console stays clean and
that nothing keeps reconnecting, and that without `--demo` the page says how
to turn the demo on.

Then the client, `watchPayment` from /client/payment-status.js, imported by
a checkout page on another origin (scripts/browser/watch.html, served by
this script) while the script posts the order's transitions with the API
token. In each case the page must see every event from seq 1 once, in order,
and the terminal one: plain; the service killed with -9 and restarted; a
buffering nginx in front; the stream cap reached; nginx answering 502; the
network offline and back; a silent stream; a frozen page; a page restored
from the back-forward cache; an expired stream token; and an aborted signal,
which must close every connection. A token the service refuses must end the
watch with an error at once. Finally, over one 10 s window, none of
the finished pages may make a request. Run it through scripts/browser-test,
which installs what is missing; `scripts/browser-test plain buffering quiet` runs
only those cases (and `demo` the demo page's checks).
"""
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
import urllib.parse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from testkit.nginx import Nginx
from testkit.pages import PageServer
from testkit.relay import Relay
from testkit.server import ROOT, PaymentServer, http

FINAL_TIMEOUT = 20  # seconds for a demo payment to reach its final status
QUIET_SECONDS = 10  # no request from any finished page in this window
HEARTBEAT = 2  # the servers' PAYMENT_HEARTBEAT_SECONDS, and what the silent-stream page is told

passed = 0
failed = 0
results = []  # (name, ok, seconds)


def check(name, fn):
    global passed, failed
    started = time.monotonic()
    try:
        fn()
    except Exception as error:  # a failed assertion or a timeout alike
        failed += 1
        seconds = time.monotonic() - started
        results.append((name, False, seconds))
        detail = str(error) or type(error).__name__
        print(f"FAIL {name} ({seconds:.1f}s): {detail}", flush=True)
        if not isinstance(error, AssertionError):
            traceback.print_exc()
        return False
    passed += 1
    seconds = time.monotonic() - started
    results.append((name, True, seconds))
    print(f"ok   {name} ({seconds:.1f}s)", flush=True)
    return True


def wait_until(what, condition, timeout, interval=0.1):
    """condition() until it is truthy; its value, or an AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(interval)


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


# --- the demo page


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
    # No try: a log that cannot be read must fail the check, not pass it as empty.
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def demo_checks(driver, server, workdir, shots):
    driver.get(server.base + "/")

    def page_loads():
        assert driver.find_element(By.ID, "pay-approve").text.strip() == "Pay — approve"
        assert driver.find_element(By.ID, "pay-decline").text.strip() == "Pay — decline"
        assert not driver.find_elements(By.CSS_SELECTOR, "input[type=password]"), "the page asks for a secret"
    check("demo: page shows the checkout card and both pay buttons", page_loads)

    def approve():
        demo = pay(driver, "pay-approve")
        assert text(driver, "status") == "succeeded", f"badge shows {text(driver, 'status')!r}"
        assert "succeeded" in text(driver, "result"), f"result shows {text(driver, 'result')!r}"
        seen = [s for _, s in timeline(driver)]
        assert seen == ["initiated", "processing", "succeeded"], f"timeline {timeline(driver)}"
        seqs = [int(q) for q, _ in timeline(driver)]
        assert seqs == [1, 2, 3], f"timeline seqs {seqs}"
        assert demo["final"] == "succeeded", f"window.demo.final {demo['final']!r}"
        assert demo["watching"] is False, "the watch has not ended"
        assert [e["status"] for e in demo["events"]] == seen, f"window.demo.events {demo['events']}"
        assert all(driver.find_element(By.ID, b).is_enabled() for b in ("pay-approve", "pay-decline")), \
            "buttons stay disabled after the payment ended"
        path = os.path.join(shots, "approved.png")
        driver.save_screenshot(path)
        print(f"     screenshot: {path}")
    check("demo: Pay — approve: initiated → processing → succeeded, watch ended", approve)

    def decline():
        demo = pay(driver, "pay-decline")
        assert text(driver, "status") == "failed", f"badge shows {text(driver, 'status')!r}"
        result = text(driver, "result")
        assert "failed" in result and "card_declined" in result, f"result shows {result!r}"
        seen = [s for _, s in timeline(driver)]
        assert seen == ["initiated", "processing", "failed"], f"timeline {timeline(driver)} (not reset?)"
        assert demo["final"] == "failed", f"window.demo.final {demo['final']!r}"
        assert demo["watching"] is False, "the watch has not ended"
        assert demo["events"][-1].get("reason") == "card_declined", f"last event {demo['events'][-1]}"
        path = os.path.join(shots, "declined.png")
        driver.save_screenshot(path)
        print(f"     screenshot: {path}")
    check("demo: Pay — decline: initiated → processing → failed with card_declined", decline)

    def console_clean():
        errors = severe_console_errors(driver)
        assert not errors, f"{errors}"
    check("demo: no errors in the browser console", console_clean)

    def no_reconnect_loop():
        first = server.metric("payment_status_stream_requests_total")
        assert first >= 2, f"payment_status_stream_requests_total is {first}, expected at least the 2 streams"
        time.sleep(5)
        second = server.metric("payment_status_stream_requests_total")
        assert second == first, f"stream requests grew from {first:g} to {second:g} in 5s: reconnect loop"
        open_now = server.metric("payment_status_open_streams")
        assert open_now == 0, f"payment_status_open_streams is {open_now:g}"
    check("demo: no stream requests in the 5s after both payments ended, no open streams", no_reconnect_loop)

    off_server = PaymentServer(workdir, name="demo-off")
    try:
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
        check("demo: without --demo the page says how to turn the demo on", demo_off)
    finally:
        off_server.stop()


# --- the client, on a checkout page of another origin


class Harness:
    """The browser, the page server, and one tab per case, kept open to the end."""

    def __init__(self, driver, pages):
        self.driver = driver
        self.pages = pages

    def open(self, module_base, streams, **params):
        """A new tab on watch.html importing the client from `module_base`, watching `streams`."""
        query = [("module", module_base + "/client/payment-status.js")] + [("stream", s) for s in streams]
        query += [(k, str(v)) for k, v in params.items()]
        self.driver.switch_to.new_window("tab")
        self.driver.get(self.pages.origin + "/watch.html?" + urllib.parse.urlencode(query))
        state = wait_until("the page loads the client", lambda: self.state() if (self.state() or {}).get("loaded") else None, 10)
        assert not state["importError"], f"import failed: {state['importError']}"
        assert len(state["watches"]) == len(streams), f"watches {state['watches']}"
        return self.driver.current_window_handle

    def state(self):
        return self.driver.execute_script("return window.watch || null")

    def watch(self, index=0):
        return self.state()["watches"][index]

    def wait_events(self, count, timeout, index=0):
        """Until the page has seen `count` events; they are returned."""
        def seen():
            w = self.watch(index)
            assert not w["error"], f"the watch failed: {w['error']}"
            return w["events"] if len(w["events"]) >= count else None
        try:
            return wait_until(f"event {count} reaches the page", seen, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}; the page has {self.watch(index)['events']}") from None

    def wait_final(self, statuses, timeout, index=0):
        """Until the watch resolves; then its events must be exactly `statuses`, seq 1, 2, ..."""
        try:
            w = wait_until("the watch resolves", lambda: self.watch(index) if self.watch(index)["settled"] else None, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}; the page has {self.watch(index)['events']}") from None
        assert not w["error"], f"the watch failed: {w['error']}; events {w['events']}"
        seqs = [e["seq"] for e in w["events"]]
        assert seqs == list(range(1, len(statuses) + 1)), f"seqs {seqs}, expected 1..{len(statuses)} once each"
        assert [e["status"] for e in w["events"]] == statuses, f"events {w['events']}"
        assert w["result"] == {"seq": len(statuses), "status": statuses[-1]}, f"resolved with {w['result']}"
        self.assert_holds_nothing()
        return w

    def assert_holds_nothing(self):
        """Once every watch of the page has ended: no timer, EventSource or fetch left."""
        if all(w["settled"] for w in self.state()["watches"]):
            held = self.driver.execute_script("return window.held()")
            assert not any(held.values()), f"the page still holds {held} after the watch ended"

    def cdp(self, command, args=None):
        return self.driver.execute_cdp_cmd(command, args or {})


def hold_streams(server, order, count):
    """`count` streams of `order` held open from here: what fills the stream cap."""
    path = urllib.parse.urlsplit(order["stream_url"])
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(f"GET {path.path}?{path.query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
        data = b""
        while b"\nid: " not in data and b"\r\nid: " not in data:
            chunk = s.recv(4096)
            assert chunk, f"a held stream was closed: {data!r}"
            data += chunk
        held.append(s)
    return held


def client_cases(h, servers, nginx_buffering, nginx_pass, relays, only):
    main, restartable, capped, short_tokens = servers
    page_origin = h.pages.origin

    def case(key, name, fn):
        if only and key not in only:
            return
        check(f"client {key}: {name}", fn)

    def plain():
        order = main.create_order()
        main.transition(order["id"], "processing")  # before the page opens: seq 1 must come from the history
        h.open(main.base, [order["stream_url"]])
        h.wait_events(2, 5)
        main.transition(order["id"], "succeeded")
        h.wait_final(["initiated", "processing", "succeeded"], 5)
    case("plain", "every event from seq 1, once, in order, through to the terminal one", plain)

    def restart():
        order = restartable.create_order()
        h.open(restartable.base, [order["stream_url"]])
        h.wait_events(1, 5)
        restartable.transition(order["id"], "processing")
        h.wait_events(2, 5)
        restartable.kill_9()
        time.sleep(2)
        restartable.start()
        restartable.wait_healthy()
        restartable.transition(order["id"], "succeeded")
        h.wait_final(["initiated", "processing", "succeeded"], 20)
    case("restart", "kill -9 of the service mid-payment, restarted on the same port and database", restart)

    def buffering():
        # The proxy really holds the stream: nothing of it arrives through nginx.
        order = main.create_order()
        path = urllib.parse.urlsplit(order["stream_url"])
        with socket.create_connection(("127.0.0.1", nginx_buffering.port), timeout=5) as s:
            s.sendall(f"GET {path.path}?{path.query}&lastEventId=0 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                      "Accept-Encoding: gzip\r\n\r\n".encode())
            s.settimeout(2)
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                pass
            assert b"seq" not in data, f"nginx let the stream through: {data!r}"
        h.open(nginx_buffering.base, [order["stream_url"]])
        h.wait_events(1, 10)  # after the 5 s without a first event, by the long-poll
        main.transition(order["id"], "processing")
        h.wait_events(2, 3)  # a held long-poll answers at once
        main.transition(order["id"], "succeeded")
        h.wait_final(["initiated", "processing", "succeeded"], 3)
    case("buffering", "nginx with proxy_buffering and gzip holds the stream: the long-poll takes over", buffering)

    def abort():
        direct, proxied = main.create_order(), main.create_order()
        before = main.metric("payment_status_open_streams")
        h.open(main.base, [main.base + direct["stream_url"], nginx_buffering.base + proxied["stream_url"]])
        h.wait_events(1, 5, index=0)
        h.wait_events(1, 10, index=1)  # the proxied one by the long-poll
        wait_until("a stream and a held long-poll open", lambda: main.metric("payment_status_open_streams") == before + 2, 5)
        h.driver.execute_script("window.abortWatch('the shopper left')")
        aborted_at = time.monotonic()
        wait_until("every connection closed", lambda: main.metric("payment_status_open_streams") == before, 2, 0.05)
        closed_in = time.monotonic() - aborted_at
        for i in (0, 1):
            w = wait_until("the watch rejects", lambda: h.watch(i) if h.watch(i)["settled"] else None, 2)
            assert w["error"] and w["error"]["isAbortReason"], f"watch {i} ended with {w['result'] or w['error']}"
        h.assert_holds_nothing()
        print(f"     open streams back to {before:g} {closed_in:.2f}s after the abort")
    case("abort", "an aborted signal rejects with its reason and closes the stream and the long-poll", abort)

    def stream_cap():
        order, other = capped.create_order(), capped.create_order()
        held = hold_streams(capped, other, 3)
        try:
            assert capped.metric("payment_status_open_streams") == 3
            path = urllib.parse.urlsplit(order["stream_url"])
            url = f"{capped.base}{path.path}?{path.query}"
            status, headers, body = http("GET", url, headers={"Accept": "text/event-stream"})
            assert status == 200 and body.startswith("retry: ") and "data:" not in body, \
                f"an EventSource request over the cap got {status} {body!r}"
            status, headers, _ = http("GET", url + "&wait=0", headers={"Accept": "application/json"})
            assert status == 503 and headers.get("Retry-After"), f"a long-poll over the cap got {status}"
            h.open(capped.base, [order["stream_url"]])
            capped.transition(order["id"], "processing")
            capped.transition(order["id"], "succeeded")
            time.sleep(3)
            assert h.watch()["events"] == [], f"the page got events over the cap: {h.watch()['events']}"
        finally:
            for s in held:
                s.close()
        h.wait_final(["initiated", "processing", "succeeded"], 25)
    case("cap", "the stream cap reached while the payment completes", stream_cap)

    def bad_gateway():
        order = main.create_order()
        before = main.metric("payment_status_open_streams")
        h.open(nginx_pass.base, [order["stream_url"]])
        h.wait_events(1, 5)
        nginx_pass.set_mode("down")
        outage_start = len(nginx_pass.requests())
        # The old worker lets go of the stream within a second of the reload.
        wait_until("nginx cuts the open stream", lambda: main.metric("payment_status_open_streams") == before, 3)
        main.transition(order["id"], "processing")
        time.sleep(6)
        during = len(nginx_pass.requests()) - outage_start
        nginx_pass.set_mode("pass")
        h.wait_events(2, 15)
        main.transition(order["id"], "succeeded")
        h.wait_final(["initiated", "processing", "succeeded"], 5)
        print(f"     {during} requests reached nginx in the 6 s of 502s")
        assert 2 <= during <= 20, f"{during} requests in 6 s of 502s: no backoff" if during > 20 else \
            f"{during} requests in 6 s of 502s: the client stopped trying"
    case("502", "nginx answering 502 for a while", bad_gateway)

    def offline():
        relay = Relay(main.port)
        relays.append(relay)  # kept to the end: the quiet check counts its connections
        order = main.create_order()
        h.open(relay.base, [order["stream_url"]])
        h.wait_events(1, 5)
        h.cdp("Network.enable")
        h.cdp("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1,
                                                   "uploadThroughput": -1})
        relay.hang_all(refuse_new=True)
        main.transition(order["id"], "processing")
        time.sleep(4)
        relay.accept_new()
        h.cdp("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                   "uploadThroughput": -1})
        h.wait_events(2, 4)
        main.transition(order["id"], "succeeded")
        h.wait_final(["initiated", "processing", "succeeded"], 5)
        lifecycle = h.state()["lifecycle"]
        assert "offline" in lifecycle and "online" in lifecycle, f"page events {lifecycle}"
    case("offline", "the network offline then back, its open connections hung", offline)

    def silent():
        relay = Relay(main.port)
        relays.append(relay)
        order = main.create_order()
        h.open(relay.base, [order["stream_url"]], hb=HEARTBEAT)
        h.wait_events(1, 5)
        relay.hang_all()  # the connection stays open, nothing comes through; new ones work
        main.transition(order["id"], "processing")
        h.wait_events(2, 2 * HEARTBEAT + 4)
        main.transition(order["id"], "succeeded")
        h.wait_final(["initiated", "processing", "succeeded"], 5)
    case("silent", f"an open stream silent for more than 2 × heartbeatSeconds ({HEARTBEAT})", silent)

    def frozen():
        order = main.create_order()
        before = main.metric("payment_status_open_streams")
        h.open(main.base, [order["stream_url"]])
        h.wait_events(1, 5)
        h.cdp("Page.setWebLifecycleState", {"state": "frozen"})
        try:
            main.transition(order["id"], "processing")
            # A frozen page runs no code; it should hold no connection either.
            wait_until("the frozen page closes its stream",
                       lambda: main.metric("payment_status_open_streams") == before, 3)
        finally:
            h.cdp("Page.setWebLifecycleState", {"state": "active"})
        h.wait_events(2, 4)
        main.transition(order["id"], "succeeded")
        h.wait_final(["initiated", "processing", "succeeded"], 5)
        lifecycle = h.state()["lifecycle"]
        assert "freeze" in lifecycle and "resume" in lifecycle, f"page events {lifecycle}"
    case("frozen", "a page frozen while transitions land, then resumed", frozen)

    def back_from_the_cache_then_finish(order):
        """Back to the page, which must come from the back-forward cache and resume."""
        h.driver.back()
        state = wait_until("the page is back", lambda: h.state(), 5)
        assert "pageshow:persisted" in state["lifecycle"], \
            f"not restored from the back-forward cache (page events {state['lifecycle']})"
        h.wait_events(2, 4)
        main.transition(order["id"], "succeeded")
        h.wait_final(["initiated", "processing", "succeeded"], 5)

    def bfcache():
        order = main.create_order()
        before = main.metric("payment_status_open_streams")
        h.open(main.base, [order["stream_url"]])
        h.wait_events(1, 5)
        h.driver.get(page_origin + "/away.html")
        main.transition(order["id"], "processing")
        wait_until("the cached page closes its stream", lambda: main.metric("payment_status_open_streams") == before, 3)
        time.sleep(1)
        back_from_the_cache_then_finish(order)
    case("bfcache", "a page left for another and restored from the back-forward cache", bfcache)

    def bfcache_polling():
        order = main.create_order()
        before = main.metric("payment_status_open_streams")
        h.open(nginx_buffering.base, [order["stream_url"]])
        h.wait_events(1, 10)  # by the long-poll, which is then held for the next event
        wait_until("a held long-poll", lambda: main.metric("payment_status_open_streams") == before + 1, 3)
        h.driver.get(page_origin + "/away.html")
        main.transition(order["id"], "processing")
        wait_until("the cached page lets go of its long-poll",
                   lambda: main.metric("payment_status_open_streams") == before, 3)
        back_from_the_cache_then_finish(order)
    case("bfcache-poll", "the same while long-polling behind a buffering proxy", bfcache_polling)

    def expired():
        order = short_tokens.create_order()
        h.open(short_tokens.base, [order["stream_url"]], refresh=short_tokens.name, order=order["id"])
        h.wait_events(1, 5)
        # The token lives 3 s, a stream 4 s: the reconnection finds the token expired.
        time.sleep(5)
        short_tokens.transition(order["id"], "processing")
        h.wait_events(2, 6)
        short_tokens.transition(order["id"], "succeeded")
        w = h.wait_final(["initiated", "processing", "succeeded"], 8)
        assert w.get("refreshes", 0) >= 1, "refreshStreamUrl was never called"
        print(f"     refreshStreamUrl called {w['refreshes']} times")
    case("token", "a stream token that expires mid-payment, refreshStreamUrl given", expired)

    def refused():
        order = main.create_order()
        forged = order["stream_url"].split("?token=")[0] + "?token=forged"
        h.open(main.base, [forged])
        w = wait_until("the watch rejects", lambda: h.watch() if h.watch()["settled"] else None, 5)
        assert w["error"] and w["error"]["name"] == "PaymentStatusError" and w["error"]["status"] == 401, \
            f"the watch ended with {w['result'] or w['error']}"
        h.assert_holds_nothing()
    case("refused", "a token the service refuses rejects the watch with a PaymentStatusError, no retrying", refused)


def quiet_check(servers, proxies, relays, pages):
    """Over one window, no request from any finished page reaches anything."""
    def counts():
        c = {s.name: len(s.requests()) for s in servers}
        c.update({f"nginx:{n.port}": len(n.requests()) for n in proxies})
        c.update({f"relay:{r.port}": r.accepted for r in relays})
        c["pages"] = len(pages.log)
        return c
    first = counts()
    time.sleep(QUIET_SECONDS)
    second = counts()
    grew = {k: second[k] - first[k] for k in first if second[k] != first[k]}
    assert not grew, f"requests in the {QUIET_SECONDS}s after every case ended: {grew}"
    still_open = {s.name: s.metric("payment_status_open_streams") for s in servers}
    assert not any(still_open.values()), f"open streams left: {still_open}"


def main():
    global failed
    os.chdir(ROOT)
    only = set(sys.argv[1:])
    workdir = tempfile.mkdtemp(prefix="payment-status-browser-")
    shots = tempfile.mkdtemp(prefix="payment-status-screens-")
    started = time.monotonic()
    servers, proxies, relays, pages, driver = [], [], [], None, None
    try:
        pages = PageServer(os.path.join(ROOT, "scripts", "browser"), {})
        common = {"PAYMENT_CORS_ORIGINS": pages.origin, "PAYMENT_HEARTBEAT_SECONDS": str(HEARTBEAT)}
        main_server = PaymentServer(workdir, env=common, demo=True, name="main")
        restartable = PaymentServer(workdir, env=common, name="restartable")
        capped = PaymentServer(workdir, env=dict(common, PAYMENT_MAX_STREAMS="3"), name="capped")
        short_tokens = PaymentServer(workdir, env=dict(common, PAYMENT_STREAM_TOKEN_TTL_SECONDS="3",
                                                       PAYMENT_STREAM_TIMEOUT_SECONDS="4"), name="short-tokens")
        servers = [main_server, restartable, capped, short_tokens]
        pages.servers.update({s.name: s for s in servers})

        def all_start():
            for s in servers:
                s.wait_healthy()
        if not check("servers start and answer /healthz", all_start):
            return
        nginx_buffering = Nginx(workdir, main_server.port, mode="buffering", name="nginx-buffering")
        proxies.append(nginx_buffering)
        nginx_pass = Nginx(workdir, main_server.port, mode="pass", name="nginx-pass")
        proxies.append(nginx_pass)
        driver = start_browser(workdir)
        if not only or "demo" in only:
            demo_checks(driver, main_server, workdir, shots)
        h = Harness(driver, pages)
        client_cases(h, servers, nginx_buffering, nginx_pass, relays, only - {"demo", "quiet"})
        if not only or "quiet" in only:
            check(f"client: no request from any finished page in {QUIET_SECONDS}s, no stream left open",
                  lambda: quiet_check(servers, proxies, relays, pages))
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
        for r in relays:
            r.close()
        for p in proxies:
            p.stop()
        for s in servers:
            s.stop()
            if failed:
                print(f"--- {s.name} log (last lines) ---\n{s.tail(15)}")
        if pages is not None:
            pages.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"screenshots: {shots}")
        print(f"browser run took {time.monotonic() - started:.0f}s")
        print(f"browser-test: {passed} passed, {failed} failed")


if __name__ == "__main__":
    main()
    sys.exit(1 if failed else 0)
