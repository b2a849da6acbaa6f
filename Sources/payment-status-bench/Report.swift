import Foundation

struct PhaseTally {
    var ok: Int
    var failed: Int
    var statuses: [Int: Int]
    /// First request written → last answer read.
    var seconds: Double

    init(_ tally: Dispatcher.Tally) {
        ok = tally.ok
        failed = tally.failed
        statuses = tally.statuses
        seconds = tally.lastAnswer > tally.firstSend ? Double(tally.lastAnswer - tally.firstSend) / 1e9 : 0
    }

    var perSecond: Double? { seconds > 0 ? Double(ok) / seconds : nil }
}

struct HoldFigures {
    var seconds: Double
    var openAtStart: Int
    var openAtEnd: Int
    var keepalives: Int
    var streamsWithKeepalive: Int
    var closedByServer: Int
}

/// Everything one run measured; printed as a block, and as one JSON line.
struct Report {
    let options: BenchCommand
    let server: ServerAddress
    var processes = 1
    var creates: PhaseTally?
    var streamsExpected = 0
    var streamsConnected = 0
    var streamsFailed = 0
    var connectSeconds = 0.0
    var rssBefore: Int?
    var rssAfter: Int?
    var rssAfterHold: Int?
    var hold: HoldFigures?
    var transitions: PhaseTally?
    var serverCPUNanos: UInt64?
    var latencies: [UInt64] = []
    var delivered = 0
    var deliveredExpected = 0
    var duplicates = 0
    var closedEarly = 0

    init(options: BenchCommand, server: ServerAddress) {
        self.options = options
        self.server = server
    }

    /// How the streams travelled: HTTP/2 (its streams per connection), or HTTP/1.1 with or without TLS.
    var streamProtocol: String {
        let tls = (options.streamUrl ?? options.url).hasPrefix("https://")
        let kind = options.longPoll ? "long-polls (Accept: application/json, wait=30) " : ""
        if options.http2 { return "\(kind)h2, \(options.streamsPerConnection) streams per connection" }
        return "\(kind)http/1.1\(tls ? " over TLS" : ""), one stream per connection"
    }

    var connectRate: Double? { connectSeconds > 0 ? Double(streamsConnected) / connectSeconds : nil }

    /// Server RSS added per open stream, right after they all opened.
    var rssPerStream: Double? {
        guard let rssBefore, let rssAfter, streamsConnected > 0 else { return nil }
        return Double(rssAfter - rssBefore) / Double(streamsConnected)
    }

    /// The same at the end of the hold: idle streams after their heartbeats.
    var rssPerIdleStream: Double? {
        guard let rssBefore, let rssAfterHold, streamsConnected > 0 else { return nil }
        return Double(rssAfterHold - rssBefore) / Double(streamsConnected)
    }

    var cpuPerTransitionMicroseconds: Double? {
        guard let serverCPUNanos, let transitions, transitions.ok > 0 else { return nil }
        return Double(serverCPUNanos) / 1000 / Double(transitions.ok)
    }

    func latencyMilliseconds(_ fraction: Double) -> Double? {
        percentile(latencies, fraction).map { Double($0) / 1e6 }
    }

    func print(json: Bool) {
        var lines: [String] = []
        let rateText = options.rate > 0 ? "\(number(options.rate))/s" : "flat out"
        lines.append("payment-status-bench: \(options.target.rawValue) at \(server)")
        lines.append("  load          \(options.orders) orders × \(options.streamsPerOrder) streams = \(streamsExpected) streams; \(options.connections) connections; rate \(rateText); \(processes) process\(processes == 1 ? "" : "es")")
        lines.append("  streams over  \(streamProtocol)")
        if let creates {
            lines.append("  orders        \(creates.ok) created, \(creates.failed) failed in \(seconds(creates.seconds)) (\(number(creates.perSecond))/s)")
        }
        lines.append("  connect       \(streamsConnected)/\(streamsExpected) streams got their first event in \(seconds(connectSeconds)) (\(number(connectRate)) streams/s), \(streamsFailed) failed")
        if let rssBefore, let rssAfter {
            lines.append("  server RSS    \(megabytes(rssBefore)) before, \(megabytes(rssAfter)) with the streams open: \(kilobytes(rssPerStream)) per open stream")
        }
        if let hold {
            lines.append("  hold          \(number(hold.seconds)) s: \(hold.openAtEnd)/\(hold.openAtStart) streams still open, \(hold.keepalives) keep-alives, \(hold.streamsWithKeepalive) streams got one, \(hold.closedByServer) closed by the server")
            if let rssAfterHold {
                lines.append("  server RSS    \(megabytes(rssAfterHold)) after the hold: \(kilobytes(rssPerIdleStream)) per idle stream")
            }
        }
        if let transitions {
            let statuses = transitions.statuses.sorted { $0.key < $1.key }.map { "\($0.key == 0 ? "no answer" : String($0.key)): \($0.value)" }.joined(separator: ", ")
            lines.append("  transitions   \(transitions.ok) acknowledged, \(transitions.failed) failed in \(seconds(transitions.seconds)): \(number(transitions.perSecond))/s (\(statuses))")
            lines.append("  push latency  p50 \(ms(latencyMilliseconds(0.5)))  p90 \(ms(latencyMilliseconds(0.9)))  p99 \(ms(latencyMilliseconds(0.99)))  max \(ms(latencyMilliseconds(1.0)))  (\(latencies.count) events)")
            lines.append("  delivered     \(delivered)/\(deliveredExpected) events (\(duplicates) duplicates, \(closedEarly) streams ended before their last event)")
            if let cpu = cpuPerTransitionMicroseconds, let serverCPUNanos {
                lines.append("  server CPU    \(String(format: "%.1f", cpu)) µs per transition (\(String(format: "%.0f", Double(serverCPUNanos) / 1e6)) ms over the phase)")
            }
        }
        for line in lines { emit(line) }
        if json { emit(jsonLine()) }
    }

    func jsonLine() -> String {
        var object: [String: Any] = [
            "target": options.target.rawValue,
            "url": server.description,
            "orders": options.orders,
            "streams_per_order": options.streamsPerOrder,
            "connections": options.connections,
            "rate": options.rate,
            "processes": processes,
            "stream_protocol": streamProtocol,
            "streams_expected": streamsExpected,
            "streams_connected": streamsConnected,
            "streams_failed": streamsFailed,
            "connect_seconds": connectSeconds,
        ]
        object["connect_rate"] = connectRate
        if let creates {
            object["creates_ok"] = creates.ok
            object["creates_per_s"] = creates.perSecond
        }
        object["server_rss_before_bytes"] = rssBefore
        object["server_rss_after_bytes"] = rssAfter
        object["rss_per_stream_bytes"] = rssPerStream
        if let hold {
            object["hold_seconds"] = hold.seconds
            object["hold_open_at_start"] = hold.openAtStart
            object["hold_open_at_end"] = hold.openAtEnd
            object["hold_keepalives"] = hold.keepalives
            object["hold_streams_with_keepalive"] = hold.streamsWithKeepalive
            object["hold_closed_by_server"] = hold.closedByServer
            object["server_rss_after_hold_bytes"] = rssAfterHold
            object["rss_per_idle_stream_bytes"] = rssPerIdleStream
        }
        if let transitions {
            object["transitions_ok"] = transitions.ok
            object["transitions_failed"] = transitions.failed
            object["transition_seconds"] = transitions.seconds
            object["transitions_per_s"] = transitions.perSecond
            object["latency_samples"] = latencies.count
            object["latency_p50_ms"] = latencyMilliseconds(0.5)
            object["latency_p90_ms"] = latencyMilliseconds(0.9)
            object["latency_p99_ms"] = latencyMilliseconds(0.99)
            object["latency_max_ms"] = latencyMilliseconds(1.0)
            object["delivered"] = delivered
            object["delivered_expected"] = deliveredExpected
            object["duplicates"] = duplicates
            object["streams_ended_early"] = closedEarly
            object["server_cpu_seconds"] = serverCPUNanos.map { Double($0) / 1e9 }
            object["cpu_per_transition_us"] = cpuPerTransitionMicroseconds
        }
        let cleaned = object.compactMapValues { value -> Any? in
            if let double = value as? Double { return double.isFinite ? double : nil }
            return value
        }
        guard let data = try? JSONSerialization.data(withJSONObject: cleaned, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    private func number(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "–" }
        return value >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }

    private func seconds(_ value: Double) -> String { String(format: "%.2f s", value) }
    private func ms(_ value: Double?) -> String { value.map { String(format: "%.2f ms", $0) } ?? "–" }
    private func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }
    private func kilobytes(_ bytes: Double?) -> String { bytes.map { String(format: "%.1f KB", $0 / 1024) } ?? "–" }
}
