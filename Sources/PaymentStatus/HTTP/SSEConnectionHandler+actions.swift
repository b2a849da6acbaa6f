import NIOCore
import NIOHTTPTypes

/// What `StreamLifecycle`'s actions mean on a NIO channel: the only place
/// that writes, reads from the store and closes for a handed-over stream.
extension SSEConnectionHandler {
    /// Applies `actions` in order; `passOn` hands what arrived to the next
    /// handler, `prelude` is the `retry:` line of a stream being handed over.
    func apply(_ actions: [StreamLifecycle<OutgoingEvent>.Action], prelude: ByteBuffer? = nil, passOn: () -> Void = {}) {
        guard let context else { return }
        for action in actions {
            switch action {
            case .passOn:
                passOn()
            case .writePrelude:
                if let prelude { context.write(wrapOutboundOut(.body(prelude)), promise: nil) }
            case .write(let outgoing):
                context.write(wrapOutboundOut(.body(outgoing.frame)), promise: nil)
                if let publishedAt = outgoing.publishedAt {
                    stream?.metrics.eventPushed(after: ContinuousClock.now - publishedAt)
                }
            case .writeKeepAlive:
                context.write(wrapOutboundOut(.body(SSEFrame.keepAlive)), promise: nil)
            case .writeLongPollAnswer(let events):
                if let answer = longPollAnswer(events.map(\.event)) { context.write(wrapOutboundOut(.body(answer)), promise: nil) }
            case .flush:
                context.flush()
            case .readGap(let after):
                readGap(after: after, context: context)
            case .scheduleDrain:
                scheduleDrain(context: context)
            case .leaveHub:
                registration?.cancel()
                registration = nil
            case .resumeReading:
                context.read()
            case .endResponse:
                endResponse(context: context)
            case .close:
                context.close(promise: nil)
            }
        }
    }

    /// A long-poll's JSON answer; with no events, the order as it was when the poll began.
    private func longPollAnswer(_ events: [PaymentEvent]) -> ByteBuffer? {
        guard let stream, case .longPoll(let status, let version) = stream.kind else { return nil }
        return WireFormat.encodeLongPoll(
            orderID: stream.orderID, status: events.last?.status ?? status, version: events.last?.seq ?? version, events: events)
    }

    /// The end of the response, then the close once it has left. A client
    /// that stopped reading would hold the connection open forever: after
    /// the grace period it is closed anyway.
    private func endResponse(context: ChannelHandlerContext) {
        var written = false
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            written = true
            context.close(promise: nil)
        }
        guard !written else { return }  // the usual case: the socket took it at once
        let grace = context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeGrace) { context.close(promise: nil) }
        context.channel.closeFuture.assumeIsolated().whenComplete { _ in grace.cancel() }
    }

    /// Publication raced past an earlier commit: the missing events are
    /// already stored, so read them instead of waiting.
    private func readGap(after: Int, context: ChannelHandlerContext) {
        guard let stream else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let (store, orderID) = (stream.store, stream.orderID)
        Task {
            let missing = try? await store.events(orderID: orderID, after: after, limit: .max)
            bound.eventLoop.execute { bound.value.gapRead(missing) }
        }
    }

    /// The store's answer to `readGap`, back on the event loop; nil when it failed.
    private func gapRead(_ missing: [PaymentEvent]?) {
        guard let context else { return }
        // Counted as pushed now: they were late through no fault of the client's.
        let now = ContinuousClock.now
        let events = missing?.map { OutgoingEvent(read: $0, publishedAt: now) }
        apply(lifecycle.gapRead(events, writable: context.channel.isWritable))
    }

    /// Shutdown: the stream ends at a random moment within the drain period,
    /// so that its clients do not all reconnect to the other instances at once.
    private func scheduleDrain(context: ChannelHandlerContext) {
        guard let stream else { return }
        let delay = stream.drainPeriod * Double.random(in: 0..<1)
        context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) { [self] in
            guard let context = self.context else { return }
            apply(lifecycle.drainDue(writable: context.channel.isWritable))
        }
    }
}
