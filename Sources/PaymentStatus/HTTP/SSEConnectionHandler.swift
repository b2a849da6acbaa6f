import NIOCore
import NIOHTTPTypes

/// One per HTTP connection (or HTTP/2 stream), between the HTTP codec and
/// the request handling. For ordinary requests it passes everything
/// through. When the stream route has checked a request and sent the
/// response head, the connection is handed over to it: from then on this
/// handler writes the stream from the connection's event loop, fed by the
/// bus, and the request's task ends.
///
/// Why: a task per open stream keeps its whole async stack for as long as the
/// stream stays open, and wakes a second thread for every event. Here an open
/// stream is its socket, this handler and a hub entry, and an event is one
/// write on the event loop. A held long-poll is handed over the same way.
///
/// What it writes and when it ends is decided by its `StreamLifecycle`;
/// this class only tells it what happened and applies the actions it
/// returns (`SSEConnectionHandler+actions.swift`). The route's side of the
/// hand-over is in `SSEConnectionHandler+handOver.swift`.
final class SSEConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// How long a finished stream's last bytes may take to leave before the connection is closed anyway.
    static let closeGrace: TimeAmount = .seconds(5)

    var context: ChannelHandlerContext?
    /// Where the connection's stream is, and so what each happening means.
    var lifecycle = StreamLifecycle<OutgoingEvent>()
    /// The order streamed, from the route's `open` until the route answers itself.
    var stream: OrderStream?
    /// The hub subscription, from the route's `open` until the lifecycle says `leaveHub`.
    var registration: StreamRegistration?

    // MARK: - Signals from the bus (on the event loop)

    /// An event or a heartbeat for the stream.
    func receive(_ signal: StreamSignal) {
        guard let context else { return }
        let writable = context.channel.isWritable
        switch signal {
        case .heartbeat:
            apply(lifecycle.heartbeatDue(writable: writable))
        case .event(let event, let frame, let publishedAt):
            apply(lifecycle.received(OutgoingEvent(event, frame: frame, publishedAt: publishedAt), writable: writable))
        }
    }

    /// The hub ended the subscription (lifetime, a long-poll's wait, shutdown).
    func hubEnded() {
        guard let context else { return }
        apply(lifecycle.hubEnded(writable: context.channel.isWritable))
    }

    // MARK: - ChannelHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The channel keeps its receive buffer for reuse for as long as it is
        // open; NIO starts it at 2 KB. Requests here are a few hundred bytes,
        // and an open stream reads nothing: start small, grow when needed.
        // An HTTP/2 stream reads from its connection's buffer (and NIO stops the process if asked to set one).
        if !context.isHTTP2Stream {
            try? context.channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.receiveBuffers)
        }
    }

    private static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)

    func handlerRemoved(context: ChannelHandlerContext) {
        registration?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        apply(lifecycle.connectionClosed())
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let isHead = if case .head = unwrapInboundIn(data) { true } else { false }
        apply(lifecycle.requestPartArrived(isHead: isHead)) { context.fireChannelRead(data) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        apply(lifecycle.readCompleted()) { context.fireChannelReadComplete() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let passOn = { context.fireUserInboundEventTriggered(event) }
        switch event {
        case is ChannelShouldQuiesceEvent:
            // The server is shutting down; the client resumes by
            // `Last-Event-ID` on another instance or after the restart.
            apply(lifecycle.shutdownBegan(), passOn: passOn)
        case let event as ChannelEvent where event == .inputClosed:
            apply(lifecycle.clientLeft(), passOn: passOn)
        default:
            passOn()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        apply(lifecycle.clientLeft()) { context.fireErrorCaught(error) }
    }

    /// Once handed over, Hummingbird lets go of the connection by asking to
    /// close it (see `SSEConnectionHandler+handOver.swift`); the connection
    /// stays open for the stream, which closes it through this handler's own
    /// context, below this point of the pipeline.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard lifecycle.isHandedOver else { return context.close(mode: mode, promise: promise) }
        promise?.fail(ConnectionHandedOver())
    }
}
