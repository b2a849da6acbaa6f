import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One item read from an event stream, parsed the way a browser's
/// EventSource parses it (WHATWG HTML, "Server-sent events").
enum SSEItem: Equatable, Sendable {
    case event(id: String?, name: String?, data: String)
    case comment(String)
    case retry(Int)
}

/// What a test sees on a stream connection.
enum StreamPart: Sendable {
    case head(HTTPResponseHead)
    case item(SSEItem)
    case end
}

/// A stream a test reads part by part, over HTTP/1.1 (`SSEConnection`) or
/// HTTP/2 (`HTTP2Stream`); the ways of reading it are written once, here.
protocol StreamReader: Sendable {
    /// The next part, waiting as long as it takes; nil once the stream is closed.
    func nextPart() async -> StreamPart?
}

extension StreamReader {
    /// The next part, or nil once the stream is closed; fails after `seconds`.
    func next(within seconds: Double = 20) async throws -> StreamPart? {
        try await withTimeout(seconds, "the next part of the stream") { await self.nextPart() }
    }

    /// The response head; must be called first.
    func head(within seconds: Double = 20) async throws -> HTTPResponseHead {
        guard case .head(let head) = try await next(within: seconds) else { throw TimedOut(what: "a response head") }
        return head
    }

    /// The next event (skipping comments and `retry:`), or nil when the stream ends.
    func nextEvent(within seconds: Double = 20) async throws -> (id: String?, name: String?, data: String)? {
        while let part = try await next(within: seconds) {
            if case .item(.event(let id, let name, let data)) = part { return (id, name, data) }
            if case .end = part { return nil }
        }
        return nil
    }

    /// Reads what is left until the stream ends; fails after `seconds`.
    func readToEnd(within seconds: Double = 20) async throws -> StreamTranscript {
        try await withTimeout(seconds, "the stream to end") {
            var transcript = StreamTranscript()
            while let part = await self.nextPart() {
                switch part {
                case .head(let head): transcript.head = head
                case .item(let item): transcript.items.append(item)
                case .end: transcript.ended = true
                }
            }
            return transcript
        }
    }
}

/// A minimal HTTP/1.1 client for event streams over a real socket: the
/// HummingbirdTesting client returns a response only once its body ends,
/// which a live stream may never do.
final class SSEConnection: StreamReader {
    private let reader: PartQueue
    private let channel: any Channel

    private init(reader: PartQueue, channel: any Channel) {
        self.reader = reader
        self.channel = channel
    }

    /// The next part, or nil once the connection is closed.
    func nextPart() async -> StreamPart? { await reader.next() }

    /// Connects to 127.0.0.1:`port` and sends `GET path` with `headers`.
    static func open(port: Int, path: String, headers: [(String, String)] = []) async throws -> SSEConnection {
        let queue = PartQueue()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(StreamHandler(queue: queue))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: "127.0.0.1:\(port)")
        head.headers.add(name: "Accept", value: "text/event-stream")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        return SSEConnection(reader: queue, channel: channel)
    }

    /// Drops the connection, as a browser tab that is closed does.
    func close() async {
        try? await channel.close().get()
    }
}

/// The parts of one connection (or one HTTP/2 stream), queued until a reader
/// takes them; also tells whoever waits for the end that it came.
final class PartQueue: Sendable {
    private struct State {
        var parts: [StreamPart] = []
        var waiter: CheckedContinuation<StreamPart?, Never>?
        var finished = false
        var finishWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func push(_ part: StreamPart) {
        let waiter = state.withLock { state -> CheckedContinuation<StreamPart?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.parts.append(part)
            return nil
        }
        waiter?.resume(returning: part)
    }

    func finish() {
        let (waiter, finishWaiters) = state.withLock { state in
            state.finished = true
            defer {
                state.waiter = nil
                state.finishWaiters = []
            }
            return (state.waiter, state.finishWaiters)
        }
        waiter?.resume(returning: nil)
        for finishWaiter in finishWaiters { finishWaiter.resume() }
    }

    /// Returns once `finish()` was called (at once if it already was).
    func waitFinished() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.finished { return true }
                state.finishWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// The next part; nil when the connection closed or the waiting task was cancelled.
    func next() async -> StreamPart? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate: StreamPart?? = state.withLock { state in
                    if !state.parts.isEmpty { return .some(state.parts.removeFirst()) }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<StreamPart?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}

/// What was read from a stream.
struct StreamTranscript: Sendable {
    var head: HTTPResponseHead?
    var items: [SSEItem] = []
    var ended = false

    var events: [(id: String?, name: String?, data: String)] {
        items.compactMap { if case .event(let id, let name, let data) = $0 { (id, name, data) } else { nil } }
    }

    var comments: [String] {
        items.compactMap { if case .comment(let text) = $0 { text } else { nil } }
    }
}

private final class StreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let queue: PartQueue
    private var parser = SSEParser()

    init(queue: PartQueue) {
        self.queue = queue
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            queue.push(.head(head))
        case .body(let buffer):
            for item in parser.feed(String(decoding: buffer.readableBytesView, as: UTF8.self)) {
                queue.push(.item(item))
            }
        case .end:
            queue.push(.end)
            queue.finish()
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        queue.finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        queue.finish()
        context.close(promise: nil)
    }
}

/// An independent SSE parser (not the server's framing code), so that the
/// tests check the bytes against the standard rather than against themselves.
struct SSEParser {
    private var pending = ""
    private var id: String?
    private var name: String?
    private var data: [String] = []

    mutating func feed(_ text: String) -> [SSEItem] {
        pending += text
        var items: [SSEItem] = []
        while let newline = pending.firstIndex(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) {
            let line = String(pending[..<newline])
            pending = String(pending[pending.index(after: newline)...])
            if let item = take(line) { items.append(item) }
        }
        return items
    }

    private mutating func take(_ line: String) -> SSEItem? {
        if line.isEmpty {
            defer { id = nil; name = nil; data = [] }
            guard !data.isEmpty else { return nil }
            return .event(id: id, name: name, data: data.joined(separator: "\n"))
        }
        if line.hasPrefix(":") {
            return .comment(String(line.dropFirst()).trimmingLeadingSpace)
        }
        let field: String
        var value: String
        if let colon = line.firstIndex(of: ":") {
            field = String(line[..<colon])
            value = String(line[line.index(after: colon)...])
            if value.hasPrefix(" ") { value.removeFirst() }
        } else {
            field = line
            value = ""
        }
        switch field {
        case "id": id = value
        case "event": name = value
        case "data": data.append(value)
        case "retry": return Int(value).map(SSEItem.retry)
        default: break
        }
        return nil
    }
}

extension String {
    fileprivate var trimmingLeadingSpace: String { hasPrefix(" ") ? String(dropFirst()) : self }
}
