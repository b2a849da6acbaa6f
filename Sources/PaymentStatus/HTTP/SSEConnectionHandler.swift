import NIOCore
import NIOHTTPTypes

/// One per HTTP connection, between the HTTP codec and the request handling.
/// For ordinary requests it passes everything through. When the stream route
/// has checked a request and sent the response head, the connection is handed
/// over to it: from then on this handler writes the stream from the
/// connection's event loop, fed by the bus, and the request's task ends.
///
/// Why: a task per open stream keeps its whole async stack for as long as the
/// stream stays open, and wakes a second thread for every event. Here an open
/// stream is its socket, this handler and a hub entry, and an event is one
/// write on the event loop. A held long-poll is handed over the same way.
///
/// The stream it writes: the history the route read (the client's missing
/// events, or the current state), then live events in `seq` order with no
/// gap and no duplicate. Events that arrive while the history is read, or
/// that overtake one another, wait; a gap is filled from the store. It ends
/// after the terminal event, at the hub's lifetime or shutdown, or when the
/// client leaves, falls behind or sends another request on the connection,
/// and then closes the connection: the client resumes by `Last-Event-ID`.
final class SSEConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// How long a finished stream's last bytes may take to leave before the connection is closed anyway.
    static let closeGrace: TimeAmount = .seconds(5)

    private var context: ChannelHandlerContext?
    /// The connection's stream or long-poll, from the route's `open` on.
    var stream: OrderStreamState?
    /// Set once the route handed the connection over: the request's task has
    /// let go of it, and this handler owns it until it closes.
    private var handedOver = false

    // MARK: - Opening (called by the stream route, on the event loop)

    /// Subscribes the channel's connection to the order (see `open(_:bus:lifetime:)`),
    /// from the route's task; throws when the client has already gone.
    static func open(
        _ stream: OrderStreamState, on channel: any Channel, bus: any EventBus, lifetime: Duration?
    ) async throws -> NIOLoopBound<SSEConnectionHandler> {
        let handler = try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: SSEConnectionHandler.self).open(stream, bus: bus, lifetime: lifetime)
        }.get()
        guard let handler else { throw ChannelError.ioOnClosedChannel }
        return handler
    }

    /// Subscribes this connection to the order before the route reads the
    /// history, so that nothing committed meanwhile goes unseen: it waits here.
    func open(_ stream: OrderStreamState, bus: any EventBus, lifetime: Duration? = nil) -> NIOLoopBound<SSEConnectionHandler>? {
        guard let context, context.channel.isActive, self.stream == nil else { return nil }
        var stream = stream
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        stream.registration = bus.subscribe(orderID: stream.orderID, sink: ConnectionSink(handler: bound), lifetime: lifetime)
        self.stream = stream
        return bound
    }

    /// The route answers this request itself after all (the history ended the stream).
    func abandon() {
        stream?.registration?.cancel()
        stream = nil
    }

    /// Takes the connection over: writes the `retry` line and the history,
    /// then whatever arrived meanwhile, and streams from here on (a
    /// long-poll: answers once something arrives). False when the stream has
    /// already ended (the client left).
    func goLive(prelude: ByteBuffer?, history: [PaymentEvent]) -> Bool {
        guard let context, context.channel.isActive, var stream else { return false }
        if stream.ended {
            // A long-poll whose wait ran out while it was being handed over
            // still owes its answer ("nothing yet"); a stream has ended for good.
            guard stream.isLongPoll else { return false }
            stream.ended = false
            self.stream = stream
            handedOver = true
            finish(context: context, closeNow: false)
            return true
        }
        handedOver = true
        if let prelude { context.write(wrapOutboundOut(.body(prelude)), promise: nil) }
        for event in history where event.seq > stream.lastSent {
            context.write(wrapOutboundOut(.body(SSEFrame.status(event))), promise: nil)
            stream.lastSent = event.seq
        }
        stream.openingDone = true
        self.stream = stream
        context.flush()
        // The request's task stops reading this connection; reading on is how
        // a client that leaves is noticed.
        context.read()
        if stream.quiesced { drain(context) }
        drainWaiting()
        return true
    }

    // MARK: - Signals from the bus (on the event loop)

    func receive(_ signal: StreamSignal) {
        guard let context, var stream, !stream.ended else { return }
        switch signal {
        case .heartbeat:
            // A long-poll's answer is one JSON document: nothing may come before it.
            guard stream.openingDone, !stream.catchingUp, !stream.isLongPoll else { return }
            write(SSEFrame.keepAlive, context: context)
        case .event(let event, let frame, let publishedAt):
            guard event.seq > stream.lastSent else { return }  // already sent
            stream.waiting.append(.init(event: event, frame: frame, publishedAt: publishedAt))
            self.stream = stream
            drainWaiting()
        }
    }

    /// Writes the waiting events that follow `lastSent` without a gap; on a
    /// gap, reads the missing events from the store first.
    private func drainWaiting() {
        guard let context, var stream, stream.openingDone, !stream.catchingUp, !stream.ended else { return }
        stream.waiting.sort { $0.event.seq < $1.event.seq }
        if stream.isLongPoll { return answerLongPoll(context, stream) }
        var wrote = false
        var terminal = false
        while let next = stream.waiting.first {
            if next.event.seq <= stream.lastSent {
                stream.waiting.removeFirst()
                continue
            }
            if next.event.seq > stream.lastSent + 1 {
                stream.catchingUp = true
                break
            }
            stream.waiting.removeFirst()
            guard context.channel.isWritable else {
                self.stream = stream
                return fallBehind(context)
            }
            context.write(wrapOutboundOut(.body(next.frame)), promise: nil)
            stream.metrics.eventPushed(after: ContinuousClock.now - next.publishedAt)
            stream.lastSent = next.event.seq
            wrote = true
            if next.event.status.isTerminal {
                terminal = true
                break
            }
        }
        self.stream = stream
        // The terminal event leaves with the end of the response, in one write.
        if terminal { return finish() }
        if wrote { context.flush() }
        if stream.catchingUp { catchUp(stream) }
    }

    /// Publication raced past an earlier commit: the missing events are
    /// already stored, so read them instead of waiting.
    func catchUp(_ stream: OrderStreamState) {
        guard let context else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let (store, orderID, after) = (stream.store, stream.orderID, stream.lastSent)
        Task {
            let missing: [PaymentEvent]?
            do {
                missing = try await store.events(orderID: orderID, after: after, limit: .max)
            } catch {
                missing = nil
            }
            bound.eventLoop.execute { bound.value.caughtUp(missing) }
        }
    }

    private func caughtUp(_ missing: [PaymentEvent]?) {
        guard let context, var stream, !stream.ended else { return }
        guard let missing else { return finish(context: context, closeNow: true) }  // the store failed: resume later
        stream.catchingUp = false
        let now = ContinuousClock.now
        stream.waiting += missing.map { .init(event: $0, frame: SSEFrame.status($0), publishedAt: now) }
        self.stream = stream
        drainWaiting()
    }

    // MARK: - Ending

    /// Ends the response properly (the last chunk) and closes the connection.
    func finish() {
        guard let context else { return }
        finish(context: context, closeNow: false)
    }

    func finish(context: ChannelHandlerContext, closeNow: Bool) {
        guard var stream, !stream.ended else { return }
        stream.ended = true
        stream.registration?.cancel()
        self.stream = stream
        // Not handed over yet: the route is still reading the history and
        // will find the stream ended.
        guard handedOver else { return }
        guard !closeNow, context.channel.isWritable else {
            context.close(promise: nil)
            return
        }
        if case .longPoll(let status, let version) = stream.kind, !stream.answered {
            // Its wait ran out (or the server is shutting down) with nothing new.
            context.write(wrapOutboundOut(.body(WireFormat.encodeLongPoll(
                orderID: stream.orderID, status: status, version: version, events: []))), promise: nil)
        }
        var written = false
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            written = true
            context.close(promise: nil)
        }
        guard !written else { return }  // the usual case: the socket took it at once
        // A client that stopped reading would hold the connection open forever.
        let grace = context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeGrace) { context.close(promise: nil) }
        context.channel.closeFuture.assumeIsolated().whenComplete { _ in grace.cancel() }
    }

    /// A client that stopped reading: its unsent bytes reached the channel's
    /// high-water mark. Cut it rather than buffer without bound.
    private func fallBehind(_ context: ChannelHandlerContext) {
        finish(context: context, closeNow: true)
    }

    private func write(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        guard context.channel.isWritable else { return fallBehind(context) }
        context.writeAndFlush(wrapOutboundOut(.body(frame)), promise: nil)
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
        stream?.registration?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if var stream {
            stream.ended = true
            stream.registration?.cancel()
            self.stream = stream
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard handedOver else { return context.fireChannelRead(data) }
        // A new request on a connection that is streaming cannot be answered
        // in order: close, and the client sends it again elsewhere.
        if case .head = unwrapInboundIn(data) { finish(context: context, closeNow: true) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard handedOver else { return context.fireChannelReadComplete() }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard handedOver else {
            // Shutdown while the route still opens a stream: it drains once handed over.
            if event is ChannelShouldQuiesceEvent, stream != nil { stream?.quiesced = true }
            return context.fireUserInboundEventTriggered(event)
        }
        switch event {
        case is ChannelShouldQuiesceEvent:
            // The server is shutting down: end the stream properly, in its
            // turn; the client resumes by `Last-Event-ID` on another instance
            // or after the restart.
            drain(context)
        case let event as ChannelEvent where event == .inputClosed:
            // The client closed its side: nobody reads the stream any more.
            finish(context: context, closeNow: true)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard handedOver else { return context.fireErrorCaught(error) }
        finish(context: context, closeNow: true)
    }

    /// Once handed over, the request's task lets go of the connection by
    /// closing its side of it; the connection itself stays open for the
    /// stream, which closes it through this handler's own context.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard handedOver else { return context.close(mode: mode, promise: promise) }
        promise?.fail(StreamHandedOver())
    }
}
