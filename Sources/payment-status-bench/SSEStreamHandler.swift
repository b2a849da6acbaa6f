import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

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
        group.connectionEnded(accepted: accepted, terminal: terminal, settled: settled)
        settled = true
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
