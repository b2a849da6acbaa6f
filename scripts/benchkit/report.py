"""BENCHMARKS.md from the results of one `scripts/bench` run.

`scripts/bench` leaves, in its work folder, `results/<scenario>-<system>.json`
(the last JSON line of each `payment-status-bench` run), `results/*.syncs` (fsync + fdatasync calls counted
under strace), `commands.txt` (scenario, system, the server's start command and
the tool's command, as run) and `versions.txt`. `render` turns them into the
page, deciding each target met or not met from the figures; `merge` keeps the
sections other scripts record (between `<!-- name:start -->` and
`<!-- name:end -->`) when the page is written again.

    python3 -m benchkit.report <work> <output> <build command> <elapsed s> <heartbeat s>
"""
import json
import os
import platform
import re
import subprocess
import sys
import time


def load_results(work):
    """The results folder of a run: scenario-system name → figures (or sync count)."""
    results = {}
    for name in sorted(os.listdir(os.path.join(work, "results"))):
        path = os.path.join(work, "results", name)
        if name.endswith(".json"):
            with open(path) as f:
                results[name[:-5]] = json.load(f)
        elif name.endswith(".syncs"):
            with open(path) as f:
                results[name[:-6] + ".syncs"] = int(f.read().strip() or 0)
    return results


def merge(page, previous):
    """`page` followed by every marked section of `previous` (the file as it was)."""
    out = page.rstrip("\n").split("\n")
    if previous:
        for kept in re.finditer(r"<!-- ([a-z-]+):start -->.*?<!-- \1:end -->", previous, flags=re.S):
            out += ["", kept.group(0), ""]
    return "\n".join(out)


def render(work, build_command, elapsed, heartbeat):
    """The page for the run in `work`, as one string."""
    results = load_results(work)
    names = {"payment-status": "payment-status", "fastapi": "fastapi peer", "nchan": "nchan"}
    systems = [s for s in ["payment-status", "fastapi", "nchan"] if f"throughput-{s}" in results or f"10k-{s}" in results]

    def cpu_model():
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        return platform.processor() or "unknown"

    def memory():
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1048576:.1f} GiB"
        return "unknown"

    def num(v, digits=0):
        if v is None:
            return "–"
        return f"{v:,.{digits}f}"

    def ms(v):
        return "–" if v is None else (f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}")

    def kb(v):
        return "–" if v is None else f"{v / 1024:.1f} KB"

    def fsyncs_per_write(system, scenario="probe"):
        probe = results.get(f"{scenario}-{system}")
        syncs = results.get(f"{scenario}-{system}.syncs")
        if probe is None or syncs is None:
            return None
        writes = (probe.get("creates_ok") or 0) + (probe.get("transitions_ok") or 0)
        return syncs / writes if writes else None

    def row(r, system, idle=False):
        if r is None:
            return None
        rss = r.get("rss_per_idle_stream_bytes") if idle else r.get("rss_per_stream_bytes")
        return [
            names[system],
            num(r.get("transitions_per_s")),
            " / ".join(ms(r.get(k)) for k in ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms"]),
            f'{r.get("delivered", 0):,}/{r.get("delivered_expected", 0):,}',
            num(r.get("connect_rate")),
            kb(rss),
            num(r.get("cpu_per_transition_us")) + " µs" if r.get("cpu_per_transition_us") is not None else "–",
        ]

    def table(header, rows, numeric=True):
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 or not numeric else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows if r]
        return "\n".join(lines)

    header = ["system", "transitions/s", "push latency p50 / p90 / p99 / max (ms)", "delivered/expected",
              "connect rate (streams/s)", "server RSS / stream", "server CPU / transition"]

    def ratio(a, b):
        if a is None or b is None or b == 0:
            return "–"
        return f"×{a / b:.2f}"

    def ratio_rows(scenario, idle=False):
        base = results.get(f"{scenario}-payment-status")
        rows = []
        if base is None:
            return rows
        rss_key = "rss_per_idle_stream_bytes" if idle else "rss_per_stream_bytes"
        for system in systems:
            if system == "payment-status" or f"{scenario}-{system}" not in results:
                continue
            r = results[f"{scenario}-{system}"]
            rows.append([names[system],
                         ratio(r.get("transitions_per_s"), base.get("transitions_per_s")),
                         " / ".join(ratio(r.get(k), base.get(k)) for k in ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms"]),
                         ratio(r.get("connect_rate"), base.get("connect_rate")),
                         ratio(r.get(rss_key), base.get(rss_key)),
                         ratio(r.get("cpu_per_transition_us"), base.get("cpu_per_transition_us"))])
        return rows

    ratio_header = ["system ÷ payment-status", "transitions/s", "latency p50 / p90 / p99 / max", "connect rate",
                    "RSS / stream", "CPU / transition"]

    commands = []
    with open(os.path.join(work, "commands.txt")) as f:
        for line in f:
            scenario, system, start, tool = line.rstrip("\n").split("\t")
            commands.append((scenario, system, start, tool))

    t = results.get("throughput-payment-status") or {}
    k = results.get("10k-payment-status") or {}
    first = next(iter(results.values()), {})
    connections = first.get("connections", 16)

    out = []
    w = out.append
    w("# Benchmarks")
    w("")
    w("`scripts/bench` writes this file. It starts payment-status and two peers one after the other on one")
    w("machine and drives each with the same `payment-status-bench` command: create the orders, open every")
    w("stream and wait for each one's first (current-state) event, then move every order")
    w("`initiated → processing → succeeded` over keep-alive connections. Push latency runs from the moment a")
    w("transition request is written to the moment the client has parsed the event on a stream (one")
    w("CLOCK_MONOTONIC for both, so each event counts once per stream). RSS and CPU are the server process's own,")
    w("from `/proc/<pid>` (nchan: its one worker). The tool shares the machine's cores with the server, the")
    w("same for all three. **The figures are ratios from one run on one shared machine, not absolute times.**")
    w("")
    w("- **payment-status**: this repository, release build, SQLite (WAL) in a temporary folder, log level warning.")
    w("- **fastapi peer**: `../shared/peers/fastapi_peer.py` (FastAPI + sse-starlette + aiosqlite, WAL with")
    w("  `synchronous=FULL`), one uvicorn process with uvloop and httptools.")
    w("- **nchan**: nginx with one worker, `nchan_publisher` on `/pub/(\\w+)` and `nchan_subscriber eventsource` on")
    w("  `/sub/(\\w+)`. It stores nothing on disk and knows no states: the floor for fan-out. Its \"orders\" are each")
    w("  channel's first message (the `initiated` event), its transitions are published messages carrying the")
    w("  same event JSON, `seq` included.")
    w("")
    w(f"Heartbeats are every {heartbeat} s on all three (`PAYMENT_HEARTBEAT_SECONDS`, sse-starlette's `ping=15`,")
    w("`nchan_eventsource_ping_interval`).")
    w("")
    w("## Machine")
    w("")
    w(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (whole run {elapsed // 60} min {elapsed % 60} s, builds excluded)")
    load_path = os.path.join(work, "load.txt")
    if os.path.exists(load_path):
        with open(load_path) as f:
            loads = dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)
        w(f"- load average (1, 5, 15 min) at the start: {loads.get('start', '?')}; at the end: {loads.get('end', '?')}"
          f" ({os.cpu_count()} cores: above {os.cpu_count()}, other work shared the machine)")
    w(f"- cores (nproc): {os.cpu_count()}; memory: {memory()}; CPU: {cpu_model()}")
    w(f"- kernel: {platform.system()} {platform.release()}; open-files limit per process: {subprocess.run(['bash', '-c', 'ulimit -n'], capture_output=True, text=True).stdout.strip()}")
    with open(os.path.join(work, "versions.txt")) as f:
        for line in f:
            if "\t" in line:
                w(f"- {line.split(chr(9), 1)[1].strip()}")
    w("")

    def scenario_section(scenario, title, intro, idle):
        rows = [row(results.get(f"{scenario}-{s}"), s, idle) for s in systems]
        if not any(rows):
            return
        w(f"## {title}")
        w("")
        w(intro)
        w("")
        w(table(header, rows))
        w("")
        rr = ratio_rows(scenario, idle)
        if rr:
            w("Ratios to payment-status (above 1: more transitions, streams or resources; for latency, slower):")
            w("")
            w(table(ratio_header, rr))
            w("")

    r0 = results.get(f"throughput-{systems[0]}", {})
    scenario_section("throughput", "Throughput",
        f"{r0.get('orders', '?'):,} orders × {r0.get('streams_per_order', '?')} streams, {r0.get('connections', '?')} connections, "
        + ("flat out" if not r0.get("rate") else f"{r0.get('rate'):,.0f} transitions/s")
        + ". Latency here includes queueing behind the other requests in flight. RSS per stream: right after the streams opened.",
        False)
    r1 = results.get(f"10k-{systems[0]}", {})
    scenario_section("10k", f"{r1.get('streams_expected', 0):,} streams",
        f"{r1.get('orders', '?'):,} orders × {r1.get('streams_per_order', '?')} streams held {r1.get('hold_seconds', 0):.0f} s with heartbeats,"
        f" then transitions at {r1.get('rate', 0):,.0f}/s over {r1.get('connections', '?')} connections. RSS per stream: at the end of the hold (idle streams).",
        True)

    writes_rows = []
    for s in systems:
        r = results.get(f"writes-{s}")
        if r is None:
            continue
        probe = results.get(f"writes-probe-{s}") or {}
        writes = (probe.get("creates_ok") or 0) + (probe.get("transitions_ok") or 0)
        per = fsyncs_per_write(s, "writes-probe")
        writes_rows.append([names[s], num(r.get("transitions_per_s")),
                            num(r.get("cpu_per_transition_us")) + " µs" if r.get("cpu_per_transition_us") is not None else "–",
                            f"{writes:,}", f'{results.get(f"writes-probe-{s}.syncs", 0):,}', "–" if per is None else f"{per:.4f}"])
    rw = results.get(f"writes-{systems[0]}", {}) if systems else {}
    if writes_rows:
        wc = rw.get("connections", "?")
        w("## Durable writes")
        w("")
        rp = results.get(f"writes-probe-{systems[0]}", {})
        w(f"Write capacity on its own: {rw.get('orders', '?'):,} orders created, then each moved twice, over {wc} connections")
        w(f"flat out, no streams open. Then, on the same server, {rp.get('orders', '?'):,} more orders the same way under `strace -f`")
        w("counting the server's `fsync` and `fdatasync` calls (strace slows a server down, so it stays out of the measured")
        w(f"run): a 2xx that promises the change is on disk needs a sync between its write and its answer, and with {wc}")
        w(f"requests in flight one sync covers at most {wc} of them, so fewer than 1/{wc} = {1 / wc:.4f} syncs per write would")
        w("mean acknowledged writes were not synced.")
        w("")
        w(table(["system", "transitions/s", "server CPU / transition", "acknowledged writes under strace",
                 "fsync + fdatasync", "syncs per write"], writes_rows))
        w("")

    hold_rows = []
    for s in systems:
        r = results.get(f"10k-{s}")
        if r and "hold_seconds" in r:
            hold_rows.append([names[s], f'{r.get("streams_connected", 0):,}/{r.get("streams_expected", 0):,}',
                              f'{r.get("hold_open_at_end", 0):,}', f'{r.get("hold_keepalives", 0):,}',
                              f'{r.get("hold_streams_with_keepalive", 0):,}', f'{r.get("hold_closed_by_server", 0):,}',
                              kb(r.get("rss_per_stream_bytes")), kb(r.get("rss_per_idle_stream_bytes"))])
    if hold_rows:
        w("The hold, in detail:")
        w("")
        w(table(["system", "streams opened", "open at the end", "keep-alives received", "streams that got one",
                 "closed by the server", "RSS / stream (just opened)", "RSS / stream (after the hold)"], hold_rows))
        w("")

    probe_rows = []
    for s in systems:
        p = results.get(f"probe-{s}")
        if p is None:
            continue
        syncs = results.get(f"probe-{s}.syncs", 0)
        writes = (p.get("creates_ok") or 0) + (p.get("transitions_ok") or 0)
        per = fsyncs_per_write(s)
        probe_rows.append([names[s], f"{writes:,}", f"{syncs:,}", "–" if per is None else f"{per:.3f}"])
    if probe_rows:
        pr = results.get(f"probe-{systems[0]}", {})
        w("## Durability probe")
        w("")
        w(f"A separate small run after the throughput run ({pr.get('orders', '?')} orders, no streams, {pr.get('connections', '?')} connections),")
        w("with `strace -f` counting the server's `fsync` and `fdatasync` calls. A 2xx that promises the change is on")
        w(f"disk needs a sync after it was written and before it was answered; with {connections} requests in flight at most,")
        w(f"one sync can cover at most {connections} of them, so fewer than 1/{connections} = {1 / connections:.3f} syncs per write means acknowledged")
        w("writes were not synced (checkpoints are among the syncs counted).")
        w("")
        w(table(["system", "acknowledged writes (creates + transitions)", "fsync + fdatasync", "syncs per write"], probe_rows))
        w("")

    pg_rows = []
    for layout, label in [("one", "one instance"), ("two", "two instances: streams on A, writes to B")]:
        for scenario in ["throughput", "10k"]:
            r = results.get(f"pg-{layout}-{scenario}")
            if not r:
                continue
            load = ("flat out" if not r.get("rate") else f"{r.get('rate'):,.0f}/s") + f", {r.get('streams_expected', 0):,} streams"
            cells = row(r, "payment-status")
            pg_rows.append([f"{label} ({load})"] + cells[1:])
    if pg_rows:
        w("## Scale-out: payment-status on PostgreSQL")
        w("")
        w("The same tool and sizes against payment-status with `PAYMENT_DB=postgres://…` (PostgreSQL 15 from Debian on the")
        w("same machine, defaults, so each commit waits for its WAL flush). First one instance; then two instances")
        w("sharing the database, the streams opened on A (`--stream-url`) and every create and transition sent to B, so")
        w("each event crosses from B to A through `NOTIFY` and A's listening connection. RSS and CPU are instance A's")
        w("(the one holding the streams); PostgreSQL's own CPU is not counted. The 10k rows skip the hold.")
        w("")
        w(table(["layout (load)"] + header[1:], pg_rows))
        w("")

    tls_rows = []
    for protocol, label in [("h1", "HTTP/1.1 over TLS"), ("h2", "HTTP/2")]:
        r = results.get(f"tls-{protocol}")
        if not r:
            continue
        streams = r.get("streams_connected", 0)
        per = r.get("stream_protocol", "")
        tls_rows.append([label, f"{streams:,}/{r.get('streams_expected', 0):,}", per.split(", ", 1)[-1],
                         num(r.get("connect_rate")), kb(r.get("rss_per_stream_bytes")),
                         " / ".join(ms(r.get(k)) for k in ["latency_p50_ms", "latency_p99_ms", "latency_max_ms"]),
                         f'{r.get("delivered", 0):,}/{r.get("delivered_expected", 0):,}',
                         num(r.get("cpu_per_transition_us")) + " µs" if r.get("cpu_per_transition_us") is not None else "–"])
    if tls_rows:
        rt = results.get("tls-h2") or results.get("tls-h1") or {}
        w("## HTTPS: HTTP/2 beside HTTP/1.1")
        w("")
        w(f"payment-status serving HTTPS itself (`--tls-certificate`/`--tls-key`, a throwaway P-256 certificate), SQLite,")
        w(f"{rt.get('orders', 0):,} orders × {rt.get('streams_per_order', '?')} streams, then transitions at {rt.get('rate', 0):,.0f}/s over")
        w(f"{rt.get('connections', '?')} keep-alive HTTPS connections (HTTP/1.1). The streams go once over HTTP/1.1 with TLS, one")
        w("connection each (what a browser does with EventSource on HTTP/1.1, past its six per origin), and once over HTTP/2,")
        w("multiplexed, as many per connection as the service allows. The connect rate counts streams that got their first")
        w("event, TLS handshakes included; RSS per stream is measured right after they all opened (no hold).")
        w("")
        w(table(["streams over", "streams opened", "connections", "connect rate (streams/s)", "server RSS / stream",
                 "push latency p50 / p99 / max (ms)", "delivered/expected", "server CPU / transition"], tls_rows))
        w("")
        h1, h2 = results.get("tls-h1"), results.get("tls-h2")
        if h1 and h2:
            w("HTTP/2 ÷ HTTP/1.1 over TLS: connect rate " + ratio(h2.get("connect_rate"), h1.get("connect_rate"))
              + ", RSS per stream " + ratio(h2.get("rss_per_stream_bytes"), h1.get("rss_per_stream_bytes"))
              + ", push p50 " + ratio(h2.get("latency_p50_ms"), h1.get("latency_p50_ms"))
              + ", p99 " + ratio(h2.get("latency_p99_ms"), h1.get("latency_p99_ms"))
              + ", CPU per transition " + ratio(h2.get("cpu_per_transition_us"), h1.get("cpu_per_transition_us")) + ".")
            w("")

    lp = results.get("longpoll-payment-status")
    if lp:
        w("## Held long-polls beside the streams")
        w("")
        w(f"The 10k scenario's sizes again, each stream replaced by a client that long-polls (`payment-status-bench")
        w("--long-poll`): it asks for the history (`after=0&wait=0`, answered at once: its \"first event\"), then asks")
        w("`after=<last seq>&wait=30` with `Accept: application/json` and is held until the order moves; after a held")
        w("answer the server closes the connection, and the client asks again on a new one. The")
        w(f"{lp.get('streams_expected', 0):,} requests are held {lp.get('hold_seconds', 0):.0f} s, then the orders move at {lp.get('rate', 0):,.0f}/s; the wake-up latency runs from")
        w("writing the transition to reading the whole answer that carries its event (for the second event, a new")
        w("connection and request come first). RSS per held request: at the end of the hold.")
        w("")
        rows = [["held long-polls", f"{lp.get('streams_connected', 0):,}/{lp.get('streams_expected', 0):,}",
                 f'{lp.get("delivered", 0):,}/{lp.get("delivered_expected", 0):,}', kb(lp.get("rss_per_idle_stream_bytes")),
                 " / ".join(ms(lp.get(x)) for x in ["latency_p50_ms", "latency_p99_ms", "latency_max_ms"]),
                 num(lp.get("cpu_per_transition_us")) + " µs" if lp.get("cpu_per_transition_us") is not None else "–"]]
        if k:
            rows.append(["open streams (10k scenario)", f"{k.get('streams_connected', 0):,}/{k.get('streams_expected', 0):,}",
                         f'{k.get("delivered", 0):,}/{k.get("delivered_expected", 0):,}', kb(k.get("rss_per_idle_stream_bytes")),
                         " / ".join(ms(k.get(x)) for x in ["latency_p50_ms", "latency_p99_ms", "latency_max_ms"]),
                         num(k.get("cpu_per_transition_us")) + " µs" if k.get("cpu_per_transition_us") is not None else "–"])
        w(table(["waiting as", "clients opened", "events delivered/expected", "server RSS each (idle)",
                 "wake-up / push p50 / p99 / max (ms)", "server CPU / transition"], rows))
        w("")

    # Targets (payment-status, this machine).
    def verdict(ok):
        return "–" if ok is None else ("**met**" if ok else "**not met**")

    per_write = fsyncs_per_write("payment-status")
    durable = None if per_write is None else per_write >= 1 / connections
    tps = t.get("transitions_per_s")
    wr = results.get("writes-payment-status") or {}
    writes_per_write = fsyncs_per_write("payment-status", "writes-probe")
    writes_durable = None if writes_per_write is None else writes_per_write >= 1 / (wr.get("connections") or 1)
    streams_ok = (k.get("streams_connected") or 0) >= 10000
    p99 = k.get("latency_p99_ms")
    idle_rss = k.get("rss_per_idle_stream_bytes")
    held = k.get("hold_open_at_end")
    targets = []
    if wr:
        wtps = wr.get("transitions_per_s")
        ok = None if wtps is None or writes_durable is None else wtps >= 10000 and writes_durable
        note = f"{num(wtps)} transitions/s with {wr.get('connections', '?')} connections and no streams (durable writes)"
        if writes_per_write is not None:
            note += f", {writes_per_write:.4f} syncs per write" + ("" if writes_durable else f": below 1/{wr.get('connections')}, not durable as measured")
        if t:
            note += f"; {num(tps)}/s in the throughput scenario ({t.get('streams_per_order', '?')} streams per order, {t.get('connections', '?')} connections)"
        targets.append(["at least 10,000 durable transitions per second", note, verdict(ok)])
    elif t:
        ok = None if tps is None else tps >= 10000 and durable is not False
        note = f"{num(tps)} transitions/s (throughput scenario)"
        if durable is False:
            note += f"; not durable as measured: {per_write:.3f} syncs per write, below 1/{connections}"
        elif durable:
            note += f"; {per_write:.3f} syncs per write"
        targets.append(["at least 10,000 durable transitions per second", note, verdict(ok)])
    if k:
        few = "" if streams_ok else " (fewer than 10,000 streams: not measured)"
        targets.append(["p99 push latency at most 1 ms with 10,000 streams open",
                        f"p99 {ms(p99)} ms at {k.get('rate', 0):,.0f} transitions/s with {k.get('streams_connected', 0):,} streams open" + few,
                        verdict(None if p99 is None or not streams_ok else p99 <= 1.0)])
        targets.append(["at most 10 KB of server RSS per idle open stream",
                        f"{kb(idle_rss)} per stream after the hold ({kb(k.get('rss_per_stream_bytes'))} right after opening)" + few,
                        verdict(None if idle_rss is None or not streams_ok else idle_rss <= 10 * 1024)])
        all_held = streams_ok and held is not None and held >= 10000 and (k.get("hold_streams_with_keepalive") or 0) >= 10000 \
            and (k.get("hold_closed_by_server") or 0) == 0
        targets.append(["10,000 concurrent streams held with heartbeats running",
                        f'{k.get("hold_open_at_end", 0):,} of {k.get("streams_expected", 0):,} open after {k.get("hold_seconds", 0):.0f} s, '
                        f'{k.get("hold_streams_with_keepalive", 0):,} got a keep-alive, {k.get("hold_closed_by_server", 0):,} closed by the server',
                        verdict(None if held is None or not streams_ok else all_held)])
    if t and (t.get("streams_per_order") or 0) >= 2:
        ok = None if tps is None or durable is None else tps >= 10000 and durable
        targets.append([f"with {t.get('streams_per_order')} streams per order and {t.get('connections', '?')} connections, at least 10,000 durable transitions/s",
                        f"{num(tps)} transitions/s, {num(t.get('cpu_per_transition_us'))} µs of server CPU per transition",
                        verdict(ok)])
    nchan_k = results.get("10k-nchan")
    if k and nchan_k and p99 is not None and nchan_k.get("latency_p99_ms"):
        times = p99 / nchan_k["latency_p99_ms"]
        targets.append(["p99 push latency within 4× of nchan's in the same run",
                        f"{ms(p99)} ms against nchan's {ms(nchan_k['latency_p99_ms'])} ms: ×{times:.2f}",
                        verdict(times <= 4)])
    rates = [(r.get("connect_rate"), name) for name, r in [("10k", k), ("throughput", t)] if r and r.get("connect_rate")]
    if rates:
        best, where = max(rates)
        targets.append(["at least 6,000 new streams/s (auth, lookup, history, first event)",
                        f"{num(best)} streams/s ({where} scenario)", verdict(best >= 6000)])
    pg = results.get("pg-one-throughput")
    if pg:
        targets.append(["PostgreSQL, one instance, flat out: at least 5,000 transitions/s",
                        f"{num(pg.get('transitions_per_s'))} transitions/s with {pg.get('streams_per_order', '?')} streams per order",
                        verdict(None if pg.get("transitions_per_s") is None else pg["transitions_per_s"] >= 5000)])
    if lp:
        lp_rss = lp.get("rss_per_idle_stream_bytes")
        lp_all = (lp.get("streams_connected") or 0) >= 10000 and lp.get("delivered") == lp.get("delivered_expected")
        targets.append(["at most 10 KB of server RSS per held long-poll (10,000 held)",
                        f"{kb(lp_rss)} per held request, {lp.get('streams_connected', 0):,} held, "
                        f"{lp.get('delivered', 0):,} of {lp.get('delivered_expected', 0):,} events delivered",
                        verdict(None if lp_rss is None or (lp.get("streams_connected") or 0) < 10000 else lp_rss <= 10 * 1024 and lp_all)])
    if targets:
        w("## Targets (payment-status on this machine)")
        w("")
        w(table(["target", "measured", "verdict"], targets, numeric=False))
        w("")

    w("## Commands")
    w("")
    w("The whole run: `scripts/bench` (sizes from the environment, see its header). Build:")
    w("")
    w("```sh")
    w(build_command)
    w("```")
    w("")
    w("Each server was started fresh for each scenario, then measured with `payment-status-bench` (`<pid>`: the")
    w("server's process id; the token is generated per run):")
    w("")
    w("```sh")
    last = None
    for scenario, system, start, tool in commands:
        if scenario != "probe" and (scenario, system) != last:
            w(f"# {scenario}: {names[system]}")
            w(start)
        elif scenario == "probe":
            w(f"# durability probe: {names[system]}, same server, while {start}")
        w(tool)
        last = (scenario, system)
    w("```")
    w("")
    conf = os.path.join(work, "nginx.conf")
    if os.path.exists(conf):
        w("nginx's configuration (`<tmp>` is the run's temporary folder):")
        w("")
        w("```nginx")
        with open(conf) as f:
            w(f.read().rstrip())
        w("```")
        w("")
    return "\n".join(out)


def main(argv):
    work, output, build_command, elapsed, heartbeat = argv[1], argv[2], argv[3], int(argv[4]), argv[5]
    previous = None
    if os.path.exists(output):
        with open(output) as f:
            previous = f.read()
    page = merge(render(work, build_command, elapsed, heartbeat), previous)
    with open(output, "w") as f:
        f.write(page)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(sys.argv)
