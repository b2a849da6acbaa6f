#!/usr/bin/env python3
"""Webhooks to the merchant, end to end: the real binary sends to a receiver
on a loopback port (scripts/testkit/receiver.py) that fails on demand, and
every signature is verified with the PyPI `standardwebhooks` package, as a
merchant would, not by re-implementing it.

Cases (names for `scripts/webhook-test NAME…`):
  signature   body, headers, Standard Webhooks signature; two signatures after a rotation
  retries     a failing endpoint: same webhook-id on every attempt, `failed` after the
              schedule, then retry one and recover the rest
  isolation   an order whose deliveries fail does not hold up another order's
  ordering    per order, seq order under concurrent transitions and random failures
  redirect    a 3xx is a failure and is not followed
  rebinding   a name that resolves to 127.0.0.1 at delivery time is refused
  https       an https receiver trusted through PAYMENT_WEBHOOK_CA_FILE gets signed deliveries;
              one whose certificate names another host gets none, and its messages fail
  shutdown    SIGTERM during slow attempts: they finish and are recorded; those that outlast
              the drain period are cut and sent again after the restart, not lost
  kill9       kill -9 cycles mid-delivery on SQLite: every message at least once, same id
  postgres    two instances on PostgreSQL, one killed mid-delivery: its messages taken
              over when the lease ends (needs PAYMENT_TEST_POSTGRES_URL)
  paused      PAYMENT_WEBHOOK_DELIVERY=off: messages stored, none sent, then all sent in order
              after a start with it on (SQLite); on PostgreSQL the instance that delivers
              sends what the one that does not wrote (needs PAYMENT_TEST_POSTGRES_URL)
Duplicates seen in kill9 and postgres are printed.
"""
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

import standardwebhooks

from testkit.receiver import Receiver
from testkit.server import PaymentServer
from testkit.wait import wait_until

LOCAL = {"PAYMENT_WEBHOOK_ALLOW_HTTP": "1", "PAYMENT_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1", "LOG_LEVEL": "notice"}
FAST_RETRIES = dict(LOCAL, PAYMENT_WEBHOOK_RETRY_SCHEDULE="0.2,0.2,0.2")


def register(server, url, description=None):
    status, endpoint = server.api("POST", "/v1/webhook-endpoints", {"url": url, "description": description})
    assert status == 201, f"registering {url} answered {status}: {endpoint}"
    return endpoint


def verify(delivery, secrets):
    """Each secret must verify the delivery with standardwebhooks; returns the payload."""
    payload = None
    for secret in secrets:
        payload = standardwebhooks.Webhook(secret).verify(delivery.body, delivery.headers)
    return payload


def messages(server, endpoint, status=None):
    query = f"?status={status}&limit=1000" if status else "?limit=1000"
    code, body = server.api("GET", f"/v1/webhook-endpoints/{endpoint['id']}/messages{query}")
    assert code == 200, f"messages answered {code}: {body}"
    return body["messages"]


def case_signature(workdir):
    receiver = Receiver()
    server = PaymentServer(workdir, env=dict(LOCAL, LOG_LEVEL="info"))
    try:
        server.wait_healthy()
        endpoint = register(server, receiver.url, "orders")
        order = server.create_order(amount=4200)
        server.transition(order["id"], "processing")
        deliveries = receiver.wait_for(lambda d: len(d) >= 2, what="two deliveries")
        for delivery, seq, status in zip(deliveries, (1, 2), ("initiated", "processing")):
            payload = verify(delivery, [endpoint["secret"]])
            assert payload["id"] == delivery.headers["webhook-id"], payload
            assert payload["type"] == "payment_status.changed", payload
            assert payload["created_at"].endswith("Z"), payload
            event, sent_order = payload["data"]["event"], payload["data"]["order"]
            assert (event["order_id"], event["seq"], event["status"]) == (order["id"], seq, status), event
            assert sent_order["status"] == status and sent_order["version"] == seq, sent_order
            assert sent_order["amount"] == 4200 and sent_order["id"] == order["id"], sent_order
            assert not {"stream_token", "stream_url"} & set(sent_order), f"the order carries a stream grant: {sent_order}"
            assert delivery.headers["content-type"] == "application/json"
        # A body or a timestamp changed on the way fails verification: the check can fail.
        tampered = dict(deliveries[0].headers)
        tampered["webhook-timestamp"] = str(int(tampered["webhook-timestamp"]) + 1)
        try:
            standardwebhooks.Webhook(endpoint["secret"]).verify(deliveries[0].body, tampered)
            raise AssertionError("a tampered timestamp verified")
        except standardwebhooks.WebhookVerificationError:
            pass

        code, rotated = server.api("POST", f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
        assert code == 200 and rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"], rotated
        server.transition(order["id"], "succeeded")
        delivery = receiver.wait_for(lambda d: len(d) >= 3, what="the delivery after the rotation")[2]
        signatures = delivery.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures), signatures
        verify(delivery, [endpoint["secret"], rotated["secret"]])
        code, listed = server.api("GET", "/v1/webhook-endpoints")
        assert code == 200 and all("secret" not in e for e in listed["endpoints"]), listed
        # One log line per attempt, and the metrics.
        wait_until("three delivered in the metrics",
                   lambda: server.metric('payment_status_webhook_messages_total{outcome="delivered"}') == 3)
        assert server.metric("payment_status_webhook_attempt_duration_seconds_count") == 3
        assert server.metric("payment_status_webhook_pending_messages") == 0
        attempts = [json.loads(line) for line in open(server.log_path, "rb") if b'"webhook attempt"' in line]
        assert len(attempts) == 3 and all(a["outcome"] == "delivered" and a["status_code"] == "204" for a in attempts), attempts
        print(f"    {len(receiver.snapshot())} deliveries verified by standardwebhooks, 2 signatures after the rotation")
    finally:
        server.stop()
        receiver.stop()


def case_retries(workdir):
    failing = {"on": True}
    receiver = Receiver(lambda d: 503 if failing["on"] else 200)
    server = PaymentServer(workdir, env=FAST_RETRIES)
    try:
        server.wait_healthy()
        endpoint = register(server, receiver.url)
        order = server.create_order()
        # 1 attempt + 3 retries, then failed.
        wait_until("the message to fail", lambda: messages(server, endpoint, "failed"))
        deliveries = receiver.snapshot()
        assert len(deliveries) == 4, f"expected 4 attempts, got {len(deliveries)}"
        ids = {d.webhook_id for d in deliveries}
        assert len(ids) == 1, f"webhook-id changed between attempts: {ids}"
        assert len({d.body for d in deliveries}) == 1, "the body changed between attempts"
        for d in deliveries:
            verify(d, [endpoint["secret"]])
        [failed] = messages(server, endpoint, "failed")
        assert [a["status_code"] for a in failed["attempts"]] == [503] * 4, failed
        assert failed["next_attempt_at"] is None and failed["order_id"] == order["id"] and failed["seq"] == 1, failed

        # retry: one more attempt, which fails again and leaves it failed.
        code, body = server.api("POST", f"/v1/webhook-endpoints/{endpoint['id']}/messages/{failed['id']}/retry")
        assert code == 202, (code, body)
        wait_until("the retried attempt to fail", lambda: len(receiver.snapshot()) == 5
                   and len((messages(server, endpoint, "failed") or [{}])[0].get("attempts", [])) == 5)
        time.sleep(0.5)
        assert len(receiver.snapshot()) == 5, "a manual retry made more than one attempt"

        # Another order fails too; then the endpoint recovers and `recover` sends both.
        other = server.create_order()
        wait_until("the second failure", lambda: len(messages(server, endpoint, "failed")) == 2)
        failing["on"] = False
        code, body = server.api("POST", f"/v1/webhook-endpoints/{endpoint['id']}/recover",
                                {"since": "2000-01-01T00:00:00Z"})
        assert code == 202 and body["queued"] == 2, (code, body)
        wait_until("both delivered", lambda: len(messages(server, endpoint, "delivered")) == 2)
        delivered_ids = {m["id"] for m in messages(server, endpoint, "delivered")}
        received = collections.Counter(d.webhook_id for d in receiver.snapshot())
        assert delivered_ids == set(received), (delivered_ids, received)
        assert {d.order_id for d in receiver.snapshot()} == {order["id"], other["id"]}
        code, _ = server.api("POST", f"/v1/webhook-endpoints/{endpoint['id']}/messages/msg_nope/retry")
        assert code == 404
        print(f"    attempts per message {dict(received)}")
    finally:
        server.stop()
        receiver.stop()


def case_isolation(workdir):
    # The failing order is known by its amount, which its messages carry: a set filled once the order
    # exists would let its first delivery, if faster than the set, be answered 204.
    stuck_amount = 4242
    receiver = Receiver(lambda d: 500 if d.order.get("amount") == stuck_amount else 204)
    # Retries far apart: the failing order sits in its backoff for the whole case.
    server = PaymentServer(workdir, env=dict(LOCAL, PAYMENT_WEBHOOK_RETRY_SCHEDULE="30,30"))
    try:
        server.wait_healthy()
        register(server, receiver.url)
        bad = server.create_order(amount=stuck_amount)
        receiver.wait_for(lambda d: any(x.order_id == bad["id"] for x in d), what="the failing order's first attempt")
        server.transition(bad["id"], "processing")
        started = time.monotonic()
        good = [server.create_order() for _ in range(5)]
        for order in good:
            server.transition(order["id"], "processing")
            server.transition(order["id"], "succeeded")
        receiver.wait_for(lambda d: sum(1 for x in d if x.order_id != bad["id"]) >= 15, timeout=10,
                          what="every event of the healthy orders")
        elapsed = time.monotonic() - started
        bad_seqs = [d.seq for d in receiver.snapshot() if d.order_id == bad["id"]]
        assert bad_seqs == [1], f"the failing order's seq 2 went before its seq 1 was settled: {bad_seqs}"
        print(f"    15 healthy deliveries within {elapsed:.2f}s while the failing order waits; its seq 2 held back")
    finally:
        server.stop()
        receiver.stop()


def case_ordering(workdir):
    rng = random.Random(7)

    def answer(delivery):
        time.sleep(rng.random() * 0.01)
        return 500 if rng.random() < 0.3 else 204

    receiver = Receiver(answer)
    server = PaymentServer(workdir, env=dict(LOCAL, PAYMENT_WEBHOOK_RETRY_SCHEDULE="0.05,0.05,0.05,0.05,0.05,0.05,0.05,0.05"))
    try:
        server.wait_healthy()
        endpoint = register(server, receiver.url)
        orders = [server.create_order()["id"] for _ in range(40)]

        def drive(order_id):
            server.transition(order_id, "processing")
            server.transition(order_id, rng.choice(["succeeded", "failed"]))

        threads = [threading.Thread(target=drive, args=(o,)) for o in orders]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_until("every message settled", lambda: not messages(server, endpoint, "pending"), timeout=60)
        failed = messages(server, endpoint, "failed")
        by_order = collections.defaultdict(list)
        for d in receiver.snapshot():
            by_order[d.order_id].append(d.seq)
        for order_id, seqs in by_order.items():
            assert seqs == sorted(seqs), f"order {order_id} received seqs out of order: {seqs}"
        assert set(by_order) == set(orders)
        print(f"    40 orders, {len(receiver.snapshot())} attempts at 30% failures, seq order kept; {len(failed)} failed for good")
    finally:
        server.stop()
        receiver.stop()


def case_redirect(workdir):
    receiver = Receiver(lambda d: (302, {"Location": "/elsewhere"}) if d.path == "/hooks" else 204)
    server = PaymentServer(workdir, env=dict(LOCAL, PAYMENT_WEBHOOK_RETRY_SCHEDULE="0.1"))
    try:
        server.wait_healthy()
        endpoint = register(server, receiver.url)
        server.create_order()
        [failed] = wait_until("the redirected message to fail", lambda: messages(server, endpoint, "failed"))
        assert [a["status_code"] for a in failed["attempts"]] == [302, 302], failed
        assert all("redirect" in a["error"] for a in failed["attempts"]), failed
        assert all(d.path == "/hooks" for d in receiver.snapshot()), "the redirect was followed"
    finally:
        server.stop()
        receiver.stop()


def case_rebinding(workdir):
    receiver = Receiver()
    url = f"http://localhost:{receiver.port}/hooks"
    strict = PaymentServer(workdir, env={"PAYMENT_WEBHOOK_ALLOW_HTTP": "1", "LOG_LEVEL": "notice"}, name="strict")
    try:
        strict.wait_healthy()
        code, problem = strict.api("POST", "/v1/webhook-endpoints", {"url": url})
        assert code == 422 and ("127.0.0.1" in problem["detail"] or "::1" in problem["detail"]), (code, problem)
    finally:
        strict.stop()
    # Registered while private networks were allowed; then the service runs
    # without: the name now resolves to a loopback address at delivery time.
    lenient = PaymentServer(workdir, env=dict(LOCAL, PAYMENT_WEBHOOK_RETRY_SCHEDULE="0.1"), name="lenient")
    try:
        lenient.wait_healthy()
        endpoint = register(lenient, url)
        token = lenient.token
    finally:
        lenient.stop()
    again = PaymentServer(workdir, env={"PAYMENT_WEBHOOK_ALLOW_HTTP": "1", "LOG_LEVEL": "notice",
                                        "PAYMENT_WEBHOOK_RETRY_SCHEDULE": "0.1"},
                          name="lenient", token=token)
    try:
        again.wait_healthy()
        again.create_order()
        [failed] = wait_until("the message to a loopback name to fail", lambda: messages(again, endpoint, "failed"))
        assert all(a["status_code"] is None and "loopback" in a["error"] for a in failed["attempts"]), failed
        assert receiver.snapshot() == [], "a request reached the loopback receiver"
        print(f"    refused at delivery: {failed['attempts'][0]['error']}")
    finally:
        again.stop()
        receiver.stop()


def certificate(workdir, name, alt_name):
    """A self-signed certificate for `alt_name` (openssl); (certificate file, key file)."""
    crt, key = os.path.join(workdir, f"{name}.crt"), os.path.join(workdir, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName={alt_name}",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    return crt, key


def case_https(workdir):
    good = certificate(workdir, "receiver", "DNS:localhost")
    wrong = certificate(workdir, "elsewhere", "DNS:elsewhere.example")
    trusted = os.path.join(workdir, "trusted.pem")
    with open(trusted, "w") as out:
        out.write(open(good[0]).read() + open(wrong[0]).read())
    receiver = Receiver(tls=good)
    impostor = Receiver(tls=wrong)
    # https only: plain http is not allowed here, and both receivers are trusted,
    # so the impostor fails on its certificate's name alone.
    env = {"PAYMENT_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1", "LOG_LEVEL": "notice",
           "PAYMENT_WEBHOOK_RETRY_SCHEDULE": "0.1", "PAYMENT_WEBHOOK_CA_FILE": trusted}
    server = PaymentServer(workdir, env=env)
    try:
        server.wait_healthy()
        endpoint = register(server, receiver.url)
        elsewhere = register(server, impostor.url)
        order = server.create_order()
        [delivery] = receiver.wait_for(lambda ds: len(ds) >= 1, what="the https delivery")
        payload = verify(delivery, [endpoint["secret"]])
        assert payload["data"]["order"]["id"] == order["id"], payload
        assert delivery.headers["host"] == f"localhost:{receiver.port}", delivery.headers
        [failed] = wait_until("the impostor's message to fail", lambda: messages(server, elsewhere, "failed"))
        errors = [a["error"] for a in failed["attempts"]]
        assert all(a["status_code"] is None for a in failed["attempts"]) and len(errors) == 2, failed
        assert impostor.snapshot() == [], "a delivery was sent to a receiver whose certificate names another host"
        assert impostor.handshakes_refused >= 2, impostor.handshakes_refused
        print(f"    1 delivery over https verified; impostor: {len(errors)} attempts refused at the handshake "
              f"({impostor.handshakes_refused} handshakes), error: {errors[0]}")
    finally:
        server.stop()
        receiver.stop()
        impostor.stop()


def case_shutdown(workdir):
    receiver = Receiver(lambda d: (time.sleep(1.5), 204)[1])
    server = PaymentServer(workdir, env=LOCAL)
    try:
        server.wait_healthy()
        endpoint = register(server, receiver.url)
        for _ in range(5):
            server.create_order()
        receiver.wait_for(lambda d: len(d) >= 5, what="five attempts in flight")
        code, _ = server.terminate()
        assert code == 0, f"exit status {code}"
        server.restart()
        delivered = messages(server, endpoint, "delivered")
        assert len(delivered) == 5, f"attempts in flight at shutdown were not recorded: {len(delivered)} delivered"
        time.sleep(1)
        assert len(receiver.snapshot()) == 5, "a message finished before the shutdown was sent again"
    finally:
        server.stop()
        receiver.stop()

    # Attempts that outlast the grace (PAYMENT_DRAIN_SECONDS) are cut and sent again after the restart.
    slow = {"on": True}
    receiver = Receiver(lambda d: (time.sleep(8 if slow["on"] else 0), 204)[1])
    server = PaymentServer(workdir, env=dict(LOCAL, PAYMENT_DRAIN_SECONDS="1"), name="grace")
    try:
        server.wait_healthy()
        endpoint = register(server, receiver.url)
        for _ in range(3):
            server.create_order()
        receiver.wait_for(lambda d: len(d) >= 3, what="three slow attempts in flight")
        code, took = server.terminate()
        assert code == 0 and took < 6, f"exit {code} after {took:.1f}s"
        slow["on"] = False
        server.restart()
        wait_until("the cut attempts sent again", lambda: len(messages(server, endpoint, "delivered")) == 3)
        ids = collections.Counter(d.webhook_id for d in receiver.snapshot())
        assert len(ids) == 3 and all(n == 2 for n in ids.values()), ids
        print(f"    five attempts in flight finished and recorded; three that outlasted a 1 s grace were cut "
              f"(exit after {took:.1f}s) and sent again after the restart under the same webhook-id")
    finally:
        server.stop()
        receiver.stop()


def transitions_of(server, order_ids, stop, acknowledged):
    """Drives orders through their statuses until `stop`; every acknowledged event is recorded."""
    rng = random.Random()
    while not stop.is_set():
        try:
            code, order = server.api("POST", "/v1/orders", {"amount": 100, "currency": "EUR"})
        except OSError:
            time.sleep(0.05)
            continue
        if code != 201:
            time.sleep(0.05)
            continue
        acknowledged.add((order["id"], 1))
        for seq, status in ((2, "processing"), (3, rng.choice(["succeeded", "failed"]))):
            try:
                code, _ = server.api("POST", f"/v1/orders/{order['id']}/transitions", {"status": status})
            except OSError:
                break
            if code != 200:
                break
            acknowledged.add((order["id"], seq))


def duplicates_of(deliveries):
    ids = collections.Counter(d.webhook_id for d in deliveries)
    return sum(n - 1 for n in ids.values())


def check_at_least_once(deliveries, acknowledged, label):
    by_event = collections.defaultdict(set)
    for d in deliveries:
        by_event[(d.order_id, d.seq)].add(d.webhook_id)
    missing = [e for e in acknowledged if e not in by_event]
    assert not missing, f"{label}: {len(missing)} acknowledged events never delivered, e.g. {missing[:3]}"
    split = {e: ids for e, ids in by_event.items() if len(ids) > 1}
    assert not split, f"{label}: one event went out under several webhook-ids: {list(split.items())[:3]}"


def case_kill9(workdir):
    receiver = Receiver(lambda d: (time.sleep(0.02), 204)[1])
    # Leases of an hour: what a killed process was sending is sent again
    # because the next start releases its leases, not because they ran out.
    server = PaymentServer(workdir, env=dict(LOCAL, PAYMENT_WEBHOOK_RETRY_SCHEDULE="0.2,0.5,1,2",
                                             PAYMENT_WEBHOOK_LEASE_SECONDS="3600"))
    acknowledged = set()
    try:
        server.wait_healthy()
        endpoint = register(server, receiver.url)
        for cycle in range(6):
            stop = threading.Event()
            writers = [threading.Thread(target=transitions_of, args=(server, None, stop, acknowledged)) for _ in range(3)]
            for w in writers:
                w.start()
            time.sleep(0.6 + random.random() * 0.6)
            server.kill_9()
            stop.set()
            for w in writers:
                w.join()
            server.start()
            server.wait_healthy()
        wait_until("the outbox to drain", lambda: not messages(server, endpoint, "pending"), timeout=90)
        deliveries = receiver.snapshot()
        check_at_least_once(deliveries, acknowledged, "kill9")
        dup = duplicates_of(deliveries)
        print(f"    6 kill -9 cycles: {len(acknowledged)} acknowledged events, {len(deliveries)} deliveries, "
              f"{dup} duplicates (same webhook-id sent again after a kill)")
    finally:
        server.stop()
        receiver.stop()


def case_postgres(workdir):
    url = fresh_postgres_database()
    gate = threading.Event()
    gate.set()

    def answer(delivery):
        gate.wait(30)  # closed: every request stalls, so the killed instance dies with some in flight
        time.sleep(0.02)
        return 204

    receiver = Receiver(answer)
    env = dict(LOCAL, PAYMENT_WEBHOOK_LEASE_SECONDS="11", PAYMENT_WEBHOOK_POLL_SECONDS="0.5")
    first = PaymentServer(workdir, env=env, name="pg-a", database=url)
    acknowledged = set()
    second = None
    try:
        first.wait_healthy()
        second = PaymentServer(workdir, env=env, name="pg-b", database=url, token=first.token)
        second.wait_healthy()
        endpoint = register(first, receiver.url)
        stop = threading.Event()
        writers = [threading.Thread(target=transitions_of, args=(s, None, stop, acknowledged))
                   for s in (first, first, second, second)]
        for w in writers:
            w.start()
        time.sleep(2)
        gate.clear()
        time.sleep(0.5)
        first.kill_9()
        killed_at = time.time()
        gate.set()
        time.sleep(1)
        stop.set()
        for w in writers:
            w.join()
        wait_until("the outbox to drain on the survivor", lambda: not messages(second, endpoint, "pending"), timeout=60)
        took = time.time() - killed_at
        deliveries = receiver.snapshot()
        check_at_least_once(deliveries, acknowledged, "postgres")
        before = {d.webhook_id for d in deliveries if d.received_at < killed_at}
        # Sent again once the dead instance's lease ended (11 s after its claim).
        taken_over = {d.webhook_id for d in deliveries if d.received_at > killed_at + 5 and d.webhook_id in before}
        assert taken_over, "no message the killed instance was sending was taken over after its lease"
        dup = duplicates_of(deliveries)
        print(f"    two instances, one killed with requests in flight: {len(acknowledged)} acknowledged events, "
              f"{len(deliveries)} deliveries, {dup} duplicates, {len(taken_over)} taken over after the lease; "
              f"drained {took:.1f}s after the kill")
    finally:
        first.stop()
        if second:
            second.stop()
        receiver.stop()


def check_created_then_processing(deliveries, orders):
    """Each order's two messages arrived once each, seq 1 before seq 2."""
    for order_id in orders:
        seqs = [d.seq for d in deliveries if d.order_id == order_id]
        assert seqs == [1, 2], f"{order_id}: {seqs}"


def case_paused(workdir):
    receiver = Receiver()
    # A short poll, so that a worker that ignored the setting would have sent by the time it is checked.
    env = dict(LOCAL, LOG_LEVEL="info", PAYMENT_WEBHOOK_POLL_SECONDS="0.2")
    server = PaymentServer(workdir, env=dict(env, PAYMENT_WEBHOOK_DELIVERY="off"), name="paused")
    try:
        server.wait_healthy()
        endpoint = register(server, receiver.url)
        orders = [server.create_order()["id"] for _ in range(3)]
        for order_id in orders:
            server.transition(order_id, "processing")
        wait_until("the pending gauge to show the six messages",
                   lambda: server.metric("payment_status_webhook_pending_messages") == 6, timeout=10)
        time.sleep(1)
        assert not receiver.snapshot(), f"delivery is off, yet {len(receiver.snapshot())} were sent"
        assert not server.log_entries("webhook attempt"), "delivery is off, yet attempts were logged"
        assert len(messages(server, endpoint, "pending")) == 6
        code, _ = server.terminate()
        assert code == 0, f"exit status {code}"
        server.env["PAYMENT_WEBHOOK_DELIVERY"] = "on"
        server.restart()
        deliveries = receiver.wait_for(lambda d: len(d) >= 6, what="the six stored messages")
        for delivery in deliveries:
            verify(delivery, [endpoint["secret"]])
        check_created_then_processing(deliveries, orders)
        wait_until("all six recorded delivered", lambda: len(messages(server, endpoint, "delivered")) == 6)
    finally:
        server.stop()
        receiver.stop()
    print("    SQLite, delivery off: 6 messages stored, 0 sent; after a start with it on: 6 sent, each order in seq order")

    url = fresh_postgres_database()
    receiver = Receiver()
    writer = PaymentServer(workdir, env=dict(env, PAYMENT_WEBHOOK_DELIVERY="off"), name="pg-writer", database=url)
    sender = None
    try:
        writer.wait_healthy()
        sender = PaymentServer(workdir, env=env, name="pg-sender", database=url, token=writer.token)
        sender.wait_healthy()
        endpoint = register(writer, receiver.url)
        orders = [writer.create_order()["id"] for _ in range(10)]
        for order_id in orders:
            writer.transition(order_id, "processing")
        deliveries = receiver.wait_for(lambda d: len(d) >= 20, what="the writer's 20 messages")
        wait_until("all 20 recorded delivered", lambda: len(messages(writer, endpoint, "delivered")) == 20)
        sent_by_writer, sent_by_sender = len(writer.log_entries("webhook attempt")), len(sender.log_entries("webhook attempt"))
        assert sent_by_writer == 0, f"the instance with delivery off made {sent_by_writer} attempts"
        assert sent_by_sender == 20, f"the delivering instance logged {sent_by_sender} attempts, not 20"
        check_created_then_processing(deliveries, orders)
    finally:
        writer.stop()
        if sender:
            sender.stop()
        receiver.stop()
    print(f"    PostgreSQL: 20 messages written by the instance with delivery off, "
          f"{sent_by_sender} attempts by the other, {sent_by_writer} by it")


def fresh_postgres_database():
    """The URL of a new, empty database on the test PostgreSQL server, made through psql (the test server's
    role may create databases)."""
    import subprocess
    base = os.environ.get("PAYMENT_TEST_POSTGRES_URL")
    assert base, "PAYMENT_TEST_POSTGRES_URL is not set (eval \"$(scripts/postgres-test-server)\")"
    name = "webhooks_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", base, "-q", "-c", f"CREATE DATABASE {name}"], check=True, stdout=subprocess.DEVNULL)
    return urllib.parse.urlsplit(base)._replace(path="/" + name).geturl()


CASES = {
    "signature": case_signature, "retries": case_retries, "isolation": case_isolation, "ordering": case_ordering,
    "redirect": case_redirect, "rebinding": case_rebinding, "https": case_https, "shutdown": case_shutdown,
    "kill9": case_kill9,
    "postgres": case_postgres, "paused": case_paused,
}


def main():
    names = sys.argv[1:] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    failures = 0
    for name in names:
        workdir = tempfile.mkdtemp(prefix=f"webhook-{name}-")
        started = time.monotonic()
        try:
            print(f"--- {name}")
            CASES[name](workdir)
            print(f"ok   {name} ({time.monotonic() - started:.1f}s)")
            shutil.rmtree(workdir, ignore_errors=True)
        except Exception:
            failures += 1
            traceback.print_exc()
            print(f"FAIL {name} ({time.monotonic() - started:.1f}s); logs in {workdir}")
    print(f"{len(names) - failures} of {len(names)} webhook cases passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
