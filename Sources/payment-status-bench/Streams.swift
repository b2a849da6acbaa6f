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
    init(eventLoopGroup: EventLoopGroup, server: ServerAddress, firstOrder: Int, paths: [String], perOrder: Int, concurrency: Int) {
        self.eventLoopGroup = eventLoopGroup
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
    }

    private func openNext() {
        let index = nextToOpen.withLock { next -> Int? in
            guard next < count else { return nil }
            next += 1
            return next - 1
        }
        guard let index else { return }
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: paths[index / perOrder])
        head.headers.add(name: "Host", value: server.hostHeader)
        head.headers.add(name: "Accept", value: "text/event-stream")
        head.headers.add(name: "Cache-Control", value: "no-cache")
        let request = head
        ClientBootstrap(group: eventLoopGroup)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 16384))
            .connectTimeout(.seconds(30))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(SSEStreamHandler(group: self, index: index, request: request))
                }
            }
            .connect(host: server.host, port: server.port)
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
                    self.settle(connected: false)
                }
            }
    }

    // MARK: - Called by the handlers

    fileprivate func settle(connected wasConnected: Bool) {
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

    fileprivate func opened() { open.add(1, ordering: .relaxed) }

    fileprivate func closed(afterTerminal: Bool) {
        open.subtract(1, ordering: .relaxed)
        if !afterTerminal && !closing.load(ordering: .acquiring) { closedEarly.add(1, ordering: .relaxed) }
    }

    fileprivate func received(stream: Int, seq: Int, at now: UInt64) {
        let slot = stream * 2 + seq - 2
        if received[slot] == 0 {
            received[slot] = now
            delivered.add(1, ordering: .releasing)
        } else {
            duplicates.add(1, ordering: .relaxed)
        }
    }

    fileprivate func keepalive(firstOfStream: Bool) {
        keepalives.add(1, ordering: .relaxed)
        if firstOfStream { streamsWithKeepalive.add(1, ordering: .relaxed) }
    }
}

/// One SSE stream: sends the GET, parses the body line by line, and counts an
/// event at the blank line that ends a frame with a `data:` line.
final class SSEStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let group: StreamGroup
    private let index: Int
    private let request: HTTPRequestHead
    /// A line split across reads; almost always empty.
    private var partial: [UInt8] = []
    private var frameSeq = -1
    private var frameHasData = false
    private var frameHasComment = false
    private var accepted = false
    private var settled = false
    private var terminal = false
    private var keepalives = 0

    init(group: StreamGroup, index: Int, request: HTTPRequestHead) {
        self.group = group
        self.index = index
        self.request = request
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status == .ok {
                accepted = true
                group.opened()
            } else {
                context.close(promise: nil)
            }
        case .body(let buffer):
            guard accepted else { return }
            parse(buffer)
        case .end:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if accepted { group.closed(afterTerminal: terminal) }
        if !settled {
            settled = true
            group.settle(connected: false)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func parse(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            var lineStart = 0
            var index = 0
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "\n") {
                    if partial.isEmpty {
                        line(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<index]))
                    } else {
                        partial.append(contentsOf: bytes[lineStart..<index])
                        let joined = partial
                        partial = []
                        joined.withUnsafeBytes { line($0) }
                    }
                    lineStart = index + 1
                }
                index += 1
            }
            if lineStart < bytes.count { partial.append(contentsOf: bytes[lineStart..<bytes.count]) }
        }
    }

    private func line(_ raw: UnsafeRawBufferPointer) {
        var length = raw.count
        if length > 0 && raw[length - 1] == UInt8(ascii: "\r") { length -= 1 }
        if length == 0 {
            endFrame()
            return
        }
        if raw[0] == UInt8(ascii: ":") {
            frameHasComment = true
        } else if length >= 5, raw[0] == UInt8(ascii: "d"), raw[1] == UInt8(ascii: "a"), raw[2] == UInt8(ascii: "t"),
            raw[3] == UInt8(ascii: "a"), raw[4] == UInt8(ascii: ":")
        {
            frameHasData = true
            if frameSeq < 0 { frameSeq = Self.seq(in: UnsafeRawBufferPointer(rebasing: raw[5..<length])) }
        }
    }

    private func endFrame() {
        defer {
            frameSeq = -1
            frameHasData = false
            frameHasComment = false
        }
        if frameHasData && frameSeq >= 0 {
            event(seq: frameSeq)
        } else if (frameHasComment || frameHasData) && settled && accepted {
            keepalives += 1
            group.keepalive(firstOfStream: keepalives == 1)
        }
    }

    private func event(seq: Int) {
        let now = monotonicNanos()
        if !settled {
            settled = true
            group.settle(connected: true)
            return
        }
        if seq == 2 || seq == 3 { group.received(stream: index, seq: seq, at: now) }
        if seq >= 3 { terminal = true }
    }

    /// The integer after `"seq"` in an event's JSON, or -1.
    private static let seqKey: [UInt8] = Array(#""seq""#.utf8)

    static func seq(in bytes: UnsafeRawBufferPointer) -> Int {
        let key = seqKey
        guard bytes.count >= key.count else { return -1 }
        var start = 0
        while start + key.count <= bytes.count {
            var matches = true
            for offset in 0..<key.count where bytes[start + offset] != key[offset] {
                matches = false
                break
            }
            if matches {
                var index = start + key.count
                while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: ":") { index += 1 }
                var value = 0
                var digits = 0
                while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9"), digits < 18 {
                    value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                    index += 1
                    digits += 1
                }
                return digits > 0 ? value : -1
            }
            start += 1
        }
        return -1
    }
}
