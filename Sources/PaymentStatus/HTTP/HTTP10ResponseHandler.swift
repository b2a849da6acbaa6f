import NIOCore
import NIOHTTP1

/// Answers HTTP/1.0 clients in their own version (RFC 9112 §2.3): the
/// framework writes every response as HTTP/1.1, and would frame a body of
/// unknown length (a stream, a held long-poll) with chunked coding, which a
/// 1.0 client cannot read. Here such a body is sent as it is and ended by
/// closing the connection, and a 1.0 request without keep-alive is closed
/// after its response. Sits next to the HTTP/1 codec, where the version is
/// still known; HTTP/1.1 passes through untouched.
final class HTTP10ResponseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The version and keep-alive wish of each request not answered yet, oldest first (pipelining).
    private var waiting: [(version: HTTPVersion, keepAlive: Bool)] = []
    private var closeAfterEnd = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { waiting.append((head.version, head.isKeepAlive)) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200:
            guard !waiting.isEmpty else { return context.write(data, promise: promise) }
            let request = waiting.removeFirst()
            guard request.version == .http1_0 else { return context.write(data, promise: promise) }
            head.version = .http1_0
            if !request.keepAlive || !head.headers.contains(name: "content-length") {
                head.headers.remove(name: "transfer-encoding")
                head.headers.replaceOrAdd(name: "connection", value: "close")
                closeAfterEnd = true
            } else {
                head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where closeAfterEnd:
            closeAfterEnd = false
            context.writeAndFlush(data).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            promise?.succeed()
        default:
            context.write(data, promise: promise)
        }
    }
}
