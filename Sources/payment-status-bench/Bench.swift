import Foundation
import NIOCore
import Synchronization

/// One run: the phases in order, and what each measured.
struct Bench {
    let options: BenchCommand
    let server: ServerAddress
    /// Where the streams connect: `server`, or another instance.
    let streamServer: ServerAddress
    let workload: Workload
    let eventLoopGroup: EventLoopGroup
    let ordersPerProcess: Int

    init(
        options: BenchCommand, server: ServerAddress, streamServer: ServerAddress, token: String?, eventLoopGroup: EventLoopGroup,
        ordersPerProcess: Int
    ) {
        self.options = options
        self.server = server
        self.streamServer = streamServer
        self.eventLoopGroup = eventLoopGroup
        self.ordersPerProcess = ordersPerProcess
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        self.workload = Workload(
            target: options.target, server: server, token: token, idPrefix: options.idPrefix ?? "bench_\(suffix)",
            at: formatter.string(from: Date()))
    }

    mutating func run() throws -> Report {
        var report = Report(options: options, server: server)
        let pid = options.serverPid
        let orderCount = options.orders
        let perOrder = options.streamsPerOrder

        // 1. Orders (nchan: each channel's first message, the `initiated` event).
        let paths = Mutex([String?](repeating: nil, count: orderCount))
        let workload = self.workload
        for index in 0..<orderCount {
            if let path = workload.streamPath(order: index) { paths.withLock { $0[index] = path } }
        }
        let creates = Dispatcher(
            jobs: (0..<orderCount).map { Job(order: Int32($0), step: 0) }, total: orderCount, rate: 0, sendTimes: nil,
            eventLoop: eventLoopGroup.next(),
            onCreated: { index, body in
                guard workload.createAnswerNeeded else { return }
                if let body, let url = Workload.streamURL(inCreateAnswer: body) { paths.withLock { $0[index] = url } }
            })
        try RequestLoops(group: eventLoopGroup, workload: workload, dispatcher: creates).run(connections: options.connections)
        let createTally = creates.tally
        report.creates = PhaseTally(createTally)
        let streamPaths = paths.withLock { $0 }
        let missing = streamPaths.filter { $0 == nil }.count
        guard createTally.failed == 0, missing == 0 else {
            throw BenchError("creating the orders failed: \(createTally.failed) of \(orderCount) (answers: \(createTally.statuses.sorted { $0.key < $1.key }.map { "\($0.key == 0 ? "none" : String($0.key)): \($0.value)" }.joined(separator: ", "))), \(missing) without a stream URL")
        }
        let allPaths = streamPaths.map { $0! }

        // 2. Streams, split over this process and its children.
        var holders: [StreamHolder] = []
        var children: [ChildHolder] = []
        defer { for child in children { child.kill() } }
        let concurrencyEach = max(options.connectConcurrency / options.processes, 1)
        var first = 0
        while first < orderCount {
            let count = min(ordersPerProcess, orderCount - first)
            let slice = Array(allPaths[first..<(first + count)])
            if holders.isEmpty {
                holders.append(LocalHolder(group: StreamGroup(
                    eventLoopGroup: eventLoopGroup, server: streamServer, firstOrder: first, paths: slice,
                    perOrder: perOrder, concurrency: concurrencyEach,
                    http2StreamsPerConnection: options.http2 ? options.streamsPerConnection : nil, longPoll: options.longPoll)))
            } else {
                let child = try ChildHolder(
                    arguments: ["--child", "--url", options.streamUrl ?? options.url, "--target", options.target.rawValue,
                                "--streams-per-order", String(perOrder), "--connect-concurrency", String(concurrencyEach)]
                        + (options.http2 ? ["--http2", "--streams-per-connection", String(options.streamsPerConnection)] : [])
                        + (options.longPoll ? ["--long-poll"] : []),
                    firstOrder: first, paths: slice, perOrder: perOrder)
                children.append(child)
                holders.append(child)
            }
            first += count
        }
        report.processes = holders.count

        report.rssBefore = pid.flatMap(ProcessStats.residentBytes)
        let openStart = monotonicNanos()
        let openDeadline = openStart + UInt64(options.connectTimeout * 1e9)
        for holder in holders.reversed() { holder.startOpening(deadline: openDeadline) }
        var opened = StreamCounters()
        for holder in holders { opened = opened + (try holder.waitSettled()) }
        report.streamsExpected = orderCount * perOrder
        report.streamsConnected = opened.connected
        report.streamsFailed = opened.failed
        report.connectSeconds = opened.settledAt > openStart ? Double(opened.settledAt - openStart) / 1e9 : Double(monotonicNanos() - openStart) / 1e9
        report.rssAfter = pid.flatMap(ProcessStats.residentBytes)

        // 3. Hold: idle streams, heartbeats only.
        if options.holdSeconds > 0 {
            var before = StreamCounters()
            for holder in holders { before = before + (try holder.status()) }
            sleepNanos(UInt64(options.holdSeconds * 1e9))
            var after = StreamCounters()
            for holder in holders { after = after + (try holder.status()) }
            report.hold = HoldFigures(
                seconds: options.holdSeconds, openAtStart: before.open, openAtEnd: after.open,
                keepalives: after.keepalives - before.keepalives, streamsWithKeepalive: after.streamsWithKeepalive,
                closedByServer: after.closedEarly)
            report.rssAfterHold = pid.flatMap(ProcessStats.residentBytes)
        }

        // 4. Transitions: processing, then succeeded once processing was answered.
        let sendTimes = SendTimes(orders: orderCount)
        var cpuStart: UInt64?
        if !options.skipTransitions {
            cpuStart = pid.flatMap(ProcessStats.cpuNanos)
            let transitions = Dispatcher(
                jobs: (0..<orderCount).map { Job(order: Int32($0), step: 1) }, total: orderCount * 2, rate: options.rate,
                sendTimes: sendTimes, eventLoop: eventLoopGroup.next())
            try RequestLoops(group: eventLoopGroup, workload: workload, dispatcher: transitions).run(connections: options.connections)
            report.transitions = PhaseTally(transitions.tally)
        }

        // 5. Deliveries: wait (bounded) for every stream's two events, then close.
        let drainDeadline = monotonicNanos() + (options.skipTransitions ? 0 : UInt64(options.drainTimeout * 1e9))
        for holder in holders { holder.startFinishing(deadline: drainDeadline) }
        var results: [HolderResult] = []
        for holder in holders { results.append(try holder.finishResult()) }
        children.removeAll()
        if let cpuStart, let pid, let cpuEnd = ProcessStats.cpuNanos(pid: pid) {
            report.serverCPUNanos = cpuEnd - cpuStart
        }

        var latencies: [UInt64] = []
        var log = ""
        let phaseStart = report.transitions.map { _ in sendTimes.earliest } ?? 0
        var total = StreamCounters()
        for result in results {
            total = total + result.counters
            guard !options.skipTransitions else { continue }
            latencies.reserveCapacity(latencies.count + result.received.count)
            for stream in 0..<(result.received.count / 2) {
                let order = result.firstOrder + stream / max(result.perOrder, 1)
                for seq in 2...3 {
                    let received = result.received[stream * 2 + seq - 2]
                    let sent = sendTimes.time(order: order, seq: seq)
                    guard received > 0, sent > 0 else { continue }
                    latencies.append(received > sent ? received - sent : 0)
                    if options.latencyLog != nil {
                        log += "\(order),\(seq),\(sent - phaseStart),\(received > sent ? received - sent : 0)\n"
                    }
                }
            }
        }
        if let path = options.latencyLog {
            try ("order,seq,sent_ns,latency_ns\n" + log).write(toFile: path, atomically: true, encoding: .utf8)
        }
        latencies.sort()
        report.latencies = latencies
        report.delivered = total.delivered
        report.duplicates = total.duplicates
        report.closedEarly = total.closedEarly
        report.deliveredExpected = options.skipTransitions ? 0 : orderCount * perOrder * 2
        return report
    }
}
