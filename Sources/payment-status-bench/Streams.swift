import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Counters of a group of streams, as one process reports them.
struct StreamCounters: Codable, Sendable {
    var streams = 0
    /// Streams whose first (current-state) event arrived.
    var connected = 0
    /// Streams refused, unreachable or closed before their first event.
    var failed = 0
    /// Streams open now.
    var open = 0
    /// Transition events (seq 2 and 3) parsed, each stream's first copy only.
    var delivered = 0
    var duplicates = 0
    /// Keep-alive frames (comments, or events without a seq) after the first event.
    var keepalives = 0
    var streamsWithKeepalive = 0
    /// Streams the server ended before their terminal event.
    var closedEarly = 0
    /// When the last stream got its first event or failed (CLOCK_MONOTONIC ns).
    var settledAt: UInt64 = 0

    static func + (a: StreamCounters, b: StreamCounters) -> StreamCounters {
        StreamCounters(
            streams: a.streams + b.streams, connected: a.connected + b.connected, failed: a.failed + b.failed,
            open: a.open + b.open, delivered: a.delivered + b.delivered, duplicates: a.duplicates + b.duplicates,
            keepalives: a.keepalives + b.keepalives, streamsWithKeepalive: a.streamsWithKeepalive + b.streamsWithKeepalive,
            closedEarly: a.closedEarly + b.closedEarly, settledAt: max(a.settledAt, b.settledAt))
    }
}

/// S streams for each of a range of orders, opened at most `concurrency` at a
/// time (a stream counts as opened when its first event arrives). The
/// handlers count into shared atomics; no task per stream.
final class StreamGroup: @unchecked Sendable {
    let firstOrder: Int
    let perOrder: Int
    let count: Int
    private let paths: [String]
    private let eventLoopGroup: EventLoopGroup
    private let server: ServerAddress
    private let concurrency: Int
    /// Set when the streams are multiplexed over HTTP/2 connections; nil: one HTTP/1.1 connection per stream.
    private let http2: HTTP2Connections?
    /// Each "stream" is a client long-polling the order instead (see `LongPollHandler`).
    private let longPoll: Bool
    /// Parse times of seq 2 and 3, per stream; each slot written by its stream's handler only.
    private let received: UnsafeMutableBufferPointer<UInt64>
    private let channels: Mutex<[Channel?]>
    private let nextToOpen = Mutex(0)

    private let settled = Atomic<Int>(0)
    private let connected = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)
    private let open = Atomic<Int>(0)
    private let delivered = Atomic<Int>(0)
    private let duplicates = Atomic<Int>(0)
    private let keepalives = Atomic<Int>(0)
    private let streamsWithKeepalive = Atomic<Int>(0)
    private let closedEarly = Atomic<Int>(0)
    private let settledAt = Atomic<UInt64>(0)
    let closing = Atomic<Bool>(false)

    /// `paths[i]` is the stream path of order `firstOrder + i`.
    init(
        eventLoopGroup: EventLoopGroup, server: ServerAddress, firstOrder: Int, paths: [String], perOrder: Int, concurrency: Int,
        http2StreamsPerConnection: Int? = nil, longPoll: Bool = false
    ) {
        self.eventLoopGroup = eventLoopGroup
        self.longPoll = longPoll
        self.http2 = http2StreamsPerConnection.map {
            HTTP2Connections(eventLoopGroup: eventLoopGroup, server: server, perConnection: $0)
        }
        self.server = server
        self.firstOrder = firstOrder
        self.paths = paths
        self.perOrder = perOrder
        self.count = paths.count * perOrder
        self.concurrency = max(concurrency, 1)
        self.received = .allocate(capacity: max(count * 2, 1))
        self.received.initialize(repeating: 0)
        self.channels = Mutex([Channel?](repeating: nil, count: count))
        if count == 0 { settledAt.store(monotonicNanos(), ordering: .relaxed) }
    }

    deinit { received.deallocate() }

    var counters: StreamCounters {
        StreamCounters(
            streams: count, connected: connected.load(ordering: .acquiring), failed: failed.load(ordering: .acquiring),
            open: open.load(ordering: .acquiring), delivered: delivered.load(ordering: .acquiring),
            duplicates: duplicates.load(ordering: .acquiring), keepalives: keepalives.load(ordering: .acquiring),
            streamsWithKeepalive: streamsWithKeepalive.load(ordering: .acquiring),
            closedEarly: closedEarly.load(ordering: .acquiring), settledAt: settledAt.load(ordering: .acquiring))
    }

    /// Parse times of seq 2 and 3 for each stream (0: not received), read after the deliveries settled.
    var receiveTimes: [UInt64] { Array(received) }

    func startOpening() {
        for _ in 0..<min(concurrency, count) { openNext() }
    }

    /// Blocks until every stream got its first event or failed, or until `deadline`.
    func waitUntilSettled(deadline: UInt64) {
        while settled.load(ordering: .acquiring) < count && monotonicNanos() < deadline { sleepNanos(1_000_000) }
    }

    /// Blocks until every stream got both transition events, or until `deadline`.
    func waitForDeliveries(deadline: UInt64) {
        while delivered.load(ordering: .acquiring) < count * 2 && monotonicNanos() < deadline { sleepNanos(1_000_000) }
    }

    /// Closes every stream still open.
    func closeAll() {
        closing.store(true, ordering: .releasing)
        let all = channels.withLock { channels -> [Channel] in
            let open = channels.compactMap { $0 }
            channels = []
            return open
        }
        let closed = all.map { $0.close() }
        for future in closed { _ = try? future.wait() }
        http2?.closeAll()
    }

    /// Connections the streams went over: one per stream, or the HTTP/2 connections opened.
    var connectionCount: Int { http2?.count ?? count }

    private func openNext() {
        let index = nextToOpen.withLock { next -> Int? in
            guard next < count else { return nil }
            next += 1
            return next - 1
        }
        guard let index else { return }
        connect(index: index, resumingAfter: nil)
    }

    /// A long-poller whose connection the server closed after an answer (it
    /// does after a held one): the same client goes on, on a new connection.
    /// A failed connect is tried again, five times at most, as a client would.
    func reconnect(index: Int, after seq: Int, attempt: Int = 1) {
        guard !closing.load(ordering: .acquiring) else { return }
        connect(index: index, resumingAfter: seq, attempt: attempt)
    }

    private func connect(index: Int, resumingAfter seq: Int?, attempt: Int = 1) {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: paths[index / perOrder])
        head.headers.add(name: "Host", value: server.hostHeader)
        head.headers.add(name: "Accept", value: "text/event-stream")
        head.headers.add(name: "Cache-Control", value: "no-cache")
        let request = head
        let connected: EventLoopFuture<Channel>
        if let http2 {
            connected = http2.openStream(index: index) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(self.handler(index: index, request: request, resumingAfter: seq))
                }
            }
        } else {
            let tls = server.tls
            connected = ClientBootstrap(group: eventLoopGroup)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 16384))
                .connectTimeout(.seconds(30))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if tls { try channel.pipeline.syncOperations.addHandler(ClientTLS.handler(ClientTLS.http1)) }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(self.handler(index: index, request: request, resumingAfter: seq))
                    }
                }
                .connect(host: server.host, port: server.port)
        }
        connected
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    let registered = self.channels.withLock { channels -> Bool in
                        guard index < channels.count else { return false }
                        channels[index] = channel
                        return true
                    }
                    if !registered { channel.close(promise: nil) }
                case .failure:
                    if let seq, attempt < 5 {
                        self.eventLoopGroup.next().scheduleTask(in: .milliseconds(200 * Int64(attempt))) {
                            self.reconnect(index: index, after: seq, attempt: attempt + 1)
                        }
                    } else if seq == nil {
                        self.settle(connected: false)
                    } else {
                        self.closed(afterTerminal: false)  // a long-poller that could not go on
                    }
                }
            }
    }

    /// The client of stream `index`: an event-stream reader, or a long-poller.
    private func handler(index: Int, request: HTTPRequestHead, resumingAfter seq: Int?) -> ChannelHandler {
        longPoll
            ? LongPollHandler(group: self, index: index, base: request, resumingAfter: seq)
            : SSEStreamHandler(group: self, index: index, request: request)
    }

    // MARK: - Called by the handlers

    func settle(connected wasConnected: Bool) {
        if wasConnected {
            connected.add(1, ordering: .relaxed)
        } else {
            failed.add(1, ordering: .relaxed)
        }
        if settled.add(1, ordering: .acquiringAndReleasing).newValue == count {
            settledAt.store(monotonicNanos(), ordering: .releasing)
        }
        openNext()
    }

    func opened() { open.add(1, ordering: .relaxed) }

    /// A stream's connection is gone for good: its end is counted, and its
    /// failure when it never got its first event.
    func connectionEnded(accepted: Bool, terminal: Bool, settled: Bool) {
        if accepted { closed(afterTerminal: terminal) }
        if !settled { settle(connected: false) }
    }

    func closed(afterTerminal: Bool) {
        open.subtract(1, ordering: .relaxed)
        if !afterTerminal && !closing.load(ordering: .acquiring) { closedEarly.add(1, ordering: .relaxed) }
    }

    func received(stream: Int, seq: Int, at now: UInt64) {
        let slot = stream * 2 + seq - 2
        if received[slot] == 0 {
            received[slot] = now
            delivered.add(1, ordering: .releasing)
        } else {
            duplicates.add(1, ordering: .relaxed)
        }
    }

    func keepalive(firstOfStream: Bool) {
        keepalives.add(1, ordering: .relaxed)
        if firstOfStream { streamsWithKeepalive.add(1, ordering: .relaxed) }
    }
}
