import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Synchronization

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payment-status-bench",
        abstract: "Load tool for payment-status and its peers: durable transitions per second, push latency, stream capacity.",
        discussion: """
            Creates N orders, opens S Server-Sent Events streams per order, waits for every stream's first \
            (current-state) event, then moves every order initiated → processing → succeeded over K keep-alive \
            connections, and measures the time from writing each transition request to parsing its event on \
            each stream. With --server-pid it also reads the server's RSS (before and after the streams open, \
            and after --hold-seconds) and its CPU time (from the first transition until every event arrived) \
            from /proc. All times come from CLOCK_MONOTONIC; compare figures only between runs on one machine. \
            nchan has no orders: each channel's first message (seq 1) stands for the creation.
            """)

    @Option(help: "Base URL of the server (plain HTTP).")
    var url = "http://127.0.0.1:8080"

    @Option(help: "Base URL the streams connect to, when it is not --url: another instance on the same database (scale-out).")
    var streamUrl: String?

    @Flag(help: "Open the streams over HTTP/2 (the stream URL must be https://), --streams-per-connection on each connection.")
    var http2 = false

    @Flag(help: "Long-poll instead of streaming: each stream is a client asking with Accept: application/json, held until its order moves (payment-status only).")
    var longPoll = false

    @Option(help: "With --http2: streams multiplexed on each connection.")
    var streamsPerConnection = 100

    @Option(help: "Merchant bearer token for payment-status (default: $PAYMENT_API_TOKEN).")
    var token: String?

    @Option(help: "What the server is: payment-status, fastapi (the Python peer) or nchan (nginx pub/sub).")
    var target: TargetKind = .paymentStatus

    @Option(help: "Orders to create (N).")
    var orders = 1000

    @Option(help: "Streams to open per order (S).")
    var streamsPerOrder = 2

    @Option(help: "Keep-alive connections sending creates and transitions, one request at a time each (K).")
    var connections = 16

    @Option(help: "Transitions per second overall; 0 sends flat out.")
    var rate: Double = 0

    @Option(help: "The server's process id: report RSS per open stream and CPU per transition from /proc.")
    var serverPid: Int32?

    @Option(help: "Processes holding the streams (this one and M-1 child copies), to stay under the open-files limit.")
    var processes = 1

    @Option(help: "After every stream is open, hold them all this many seconds before the transitions (idle RSS, heartbeats).")
    var holdSeconds: Double = 0

    @Flag(help: "Only create, connect (and hold): send no transitions.")
    var skipTransitions = false

    @Option(help: "Streams being opened at once, over all processes (a stream is opened when its first event arrives).")
    var connectConcurrency = 128

    @Option(help: "Seconds to wait for every stream's first event.")
    var connectTimeout: Double = 120

    @Option(help: "Seconds to wait, after the last transition was answered, for every expected event.")
    var drainTimeout: Double = 30

    @Option(help: "Prefix of the order ids (default: bench_ and a random suffix, so runs never collide).")
    var idPrefix: String?

    @Option(help: "Write every event's latency to this file as CSV: order,seq,sent_ns,latency_ns (sent_ns from the transition phase's start).")
    var latencyLog: String?

    @Flag(help: "Also print the results as one JSON line (the last line of the output).")
    var json = false

    @Flag(help: .hidden)
    var child = false

    func validate() throws {
        guard orders > 0 else { throw ValidationError("--orders must be at least 1") }
        guard streamsPerOrder >= 0 else { throw ValidationError("--streams-per-order must not be negative") }
        guard connections > 0 else { throw ValidationError("--connections must be at least 1") }
        guard rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard processes >= 1 else { throw ValidationError("--processes must be at least 1") }
        if longPoll, target != .paymentStatus { throw ValidationError("--long-poll is for payment-status only") }
        guard streamsPerConnection >= 1 else { throw ValidationError("--streams-per-connection must be at least 1") }
        if http2, !(streamUrl ?? url).hasPrefix("https://") {
            throw ValidationError("--http2 needs an https:// stream URL (HTTP/2 is offered by ALPN over TLS)")
        }
        guard holdSeconds >= 0, connectTimeout > 0, drainTimeout >= 0 else { throw ValidationError("durations must not be negative") }
        if let idPrefix, idPrefix.isEmpty || !idPrefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
            throw ValidationError("--id-prefix must be letters, digits and _ only")
        }
    }

    func run() throws {
        let fileLimit = raiseOpenFilesLimit()
        let server = try ServerAddress(url: url)
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        defer { try? eventLoopGroup.syncShutdownGracefully() }
        if child {
            try ChildMain.run(
                eventLoopGroup: eventLoopGroup, server: server, perOrder: streamsPerOrder, concurrency: connectConcurrency,
                http2StreamsPerConnection: http2 ? streamsPerConnection : nil, longPoll: longPoll)
            return
        }
        if let pid = serverPid, ProcessStats.residentBytes(pid: pid) == nil {
            throw BenchError("no process \(pid) to read /proc/\(pid)/status from (--server-pid)")
        }
        let token = self.token ?? ProcessInfo.processInfo.environment["PAYMENT_API_TOKEN"]
        if target == .paymentStatus && (token ?? "").isEmpty {
            throw BenchError("payment-status needs the merchant token: --token or PAYMENT_API_TOKEN")
        }
        let ordersPerProcess = (orders + processes - 1) / processes
        let streamsHere = min(ordersPerProcess, orders) * streamsPerOrder
        if streamsHere + connections + 64 > fileLimit {
            throw BenchError("""
                \(streamsHere) streams in one process would pass the open-files limit (\(fileLimit)): \
                use --processes \((orders * streamsPerOrder + connections + 64) / max(fileLimit - connections - 64, 1) + 1) or more
                """)
        }

        var bench = Bench(
            options: self, server: server, streamServer: try streamUrl.map(ServerAddress.init(url:)) ?? server, token: token,
            eventLoopGroup: eventLoopGroup, ordersPerProcess: ordersPerProcess)
        let report = try bench.run()
        report.print(json: json)
    }
}
