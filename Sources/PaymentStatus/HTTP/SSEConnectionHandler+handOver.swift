import NIOCore

/// The route's side of the hand-over, called from its task: subscribe the
/// connection, read the history, then either answer itself or hand the
/// connection to this handler and end its task.
extension SSEConnectionHandler {
    /// Subscribes the channel's connection to the order (see
    /// `open(_:bus:lifetime:)`), then runs `read` (the history): what
    /// commits meanwhile waits in the handler. When the read fails, the
    /// route answers with the error itself. Throws when the client has gone.
    static func open<Read: Sendable>(
        _ stream: OrderStream, on channel: any Channel, bus: any EventBus, lifetime: Duration?,
        thenRead read: () async throws -> Read
    ) async throws -> (NIOLoopBound<SSEConnectionHandler>, Read) {
        let handler = try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: SSEConnectionHandler.self).open(stream, bus: bus, lifetime: lifetime)
        }.get()
        guard let handler else { throw ChannelError.ioOnClosedChannel }
        do {
            return (handler, try await read())
        } catch {
            channel.eventLoop.execute { handler.value.answeredByRoute() }
            throw error
        }
    }

    /// The route answers the request itself after all (see `answeredByRoute()`), from its task.
    static func answeredByRoute(_ handler: NIOLoopBound<SSEConnectionHandler>, on channel: any Channel) async throws {
        try await channel.eventLoop.submit { handler.value.answeredByRoute() }.get()
    }

    /// Subscribes this connection to the order before the route reads the
    /// history, so that nothing committed meanwhile goes unseen: it waits
    /// here. Nil when the connection has closed or streams already.
    func open(_ stream: OrderStream, bus: any EventBus, lifetime: Duration? = nil) -> NIOLoopBound<SSEConnectionHandler>? {
        guard let context, context.channel.isActive, lifecycle.open(stream.lifecycleKind, lastSent: stream.lastSent) else { return nil }
        self.stream = stream
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        registration = bus.subscribe(orderID: stream.orderID, sink: ConnectionSink(handler: bound), lifetime: lifetime)
        return bound
    }

    /// The route answers this request itself after all; the connection then
    /// serves the next request as usual.
    func answeredByRoute() {
        apply(lifecycle.answeredByRoute())
        stream = nil
    }

    /// Takes the connection over: writes the `retry` line and the history,
    /// then whatever arrived meanwhile, and streams from here on (a
    /// long-poll: answers once something arrives). False when the stream
    /// has already ended (the client left).
    func goLive(prelude: ByteBuffer?, history: [PaymentEvent]) -> Bool {
        guard let context, context.channel.isActive else { return false }
        let history = history.map { OutgoingEvent(read: $0, publishedAt: nil) }
        guard let actions = lifecycle.handOver(history: history, writable: context.channel.isWritable) else { return false }
        apply(actions, prelude: prelude)
        return true
    }

    /// Hands the connection over and ends the route's response body
    /// (`ConnectionHandedOver.endResponseBody`), from the route's task; throws
    /// `ChannelError.ioOnClosedChannel` instead when the stream ended before
    /// it began (the client left), and Hummingbird then closes the connection.
    static func handOver(
        _ handler: NIOLoopBound<SSEConnectionHandler>, on channel: any Channel, prelude: ByteBuffer?, history: [PaymentEvent]
    ) async throws -> Never {
        guard try await channel.eventLoop.submit({ handler.value.goLive(prelude: prelude, history: history) }).get() else {
            throw ChannelError.ioOnClosedChannel
        }
        try ConnectionHandedOver.endResponseBody()
    }
}
