import NIOCore

/// Flushes what was written before passing a close on to the TLS handler.
///
/// At shutdown Hummingbird's HTTP/2 connection manager closes the connection
/// the moment its last stream ends, and that moment comes while the stream's
/// final frame is being written, before it is flushed; NIOSSL's handler then
/// starts its TLS shutdown without sending the unflushed bytes. The last
/// stream of each connection would lose its end (an event stream its
/// END_STREAM, a request its response's last bytes).
final class FlushBeforeCloseHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = NIOAny

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        context.flush()
        context.close(mode: mode, promise: promise)
    }
}
