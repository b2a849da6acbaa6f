import NIOCore
import NIOHTTP1

/// One client that long-polls an order instead of holding a stream, on one
/// keep-alive connection: first `after=0&wait=0` (the history, answered at
/// once: it counts as the stream's first event), then `after=<last seq>&wait=30`
/// again and again, each held by the server until the order moves. Each
/// transition event is timed when the answer that carries it has been read
/// whole; the client stops at the answer that says the order is final. When
/// the server closes the connection after an answer, the client goes on, on a
/// new connection (`StreamGroup.reconnect`), as a browser's fetch would.
final class LongPollHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let group: StreamGroup
    private let index: Int
    private let base: HTTPRequestHead
    private var body: [UInt8] = []
    private var lastSeq = 0
    private var accepted = false
    private var settled = false
    private var terminal = false
    private var answerOK = false

    /// Whether the current connection carried an answer (so its close is not a failure).
    private var answeredHere = false

    /// `base` is the stream's GET; its URI gets the `after` and `wait` parameters.
    /// `resumingAfter`: the client already has the events up to that `seq` (a new connection).
    init(group: StreamGroup, index: Int, base: HTTPRequestHead, resumingAfter seq: Int?) {
        self.group = group
        self.index = index
        if let seq {
            lastSeq = seq
            accepted = true
            settled = true
        }
        var head = base
        head.headers.replaceOrAdd(name: "Accept", value: "application/json")
        self.base = head
    }

    func channelActive(context: ChannelHandlerContext) {
        poll(context: context, wait: settled ? 30 : 0)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            answerOK = head.status == .ok
            answeredHere = false
            if answerOK && !accepted {
                accepted = true
                group.opened()
            }
            body.removeAll(keepingCapacity: true)
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard answerOK else {
                context.close(promise: nil)
                return
            }
            answered(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if accepted && !terminal && answeredHere && answerOK {
            group.reconnect(index: index, after: lastSeq)
            context.fireChannelInactive()
            return
        }
        group.connectionEnded(accepted: accepted, terminal: terminal, settled: settled)
        settled = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func answered(context: ChannelHandlerContext) {
        let now = monotonicNanos()
        answeredHere = true
        let seqs = body.withUnsafeBytes { Self.seqs(in: $0) }
        let final = body.withUnsafeBytes { Self.contains(#""final":true"#, in: $0) }
        if !settled {
            settled = true
            group.settle(connected: true)
        } else {
            for seq in seqs where seq > lastSeq && (seq == 2 || seq == 3) { group.received(stream: index, seq: seq, at: now) }
        }
        lastSeq = max(lastSeq, seqs.max() ?? 0)
        if final {
            terminal = true
            context.close(promise: nil)
        } else {
            poll(context: context, wait: 30)
        }
    }

    private func poll(context: ChannelHandlerContext, wait: Int) {
        var head = base
        head.uri += (head.uri.contains("?") ? "&" : "?") + "after=\(lastSeq)&wait=\(wait)"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Every integer that follows a `"seq"` key, in order.
    static func seqs(in bytes: UnsafeRawBufferPointer) -> [Int] {
        var found: [Int] = []
        var rest = UnsafeRawBufferPointer(rebasing: bytes[...])
        while !rest.isEmpty {
            let seq = SSEStreamHandler.seq(in: rest)
            guard seq >= 0, let at = firstIndex(of: #""seq""#, in: rest) else { break }
            found.append(seq)
            rest = UnsafeRawBufferPointer(rebasing: rest[(rest.startIndex + at + 5)...])
        }
        return found
    }

    static func contains(_ text: String, in bytes: UnsafeRawBufferPointer) -> Bool {
        firstIndex(of: text, in: bytes) != nil
    }

    private static func firstIndex(of text: String, in bytes: UnsafeRawBufferPointer) -> Int? {
        let key = Array(text.utf8)
        guard bytes.count >= key.count else { return nil }
        for start in 0...(bytes.count - key.count) where bytes[start] == key[0] {
            if (1..<key.count).allSatisfy({ bytes[start + $0] == key[$0] }) { return start }
        }
        return nil
    }
}
