import NIOCore

extension SSEConnectionHandler {
    /// A long-poll answers with every event that follows `lastSent` without a
    /// gap, as soon as there is one; a gap is read from the store first.
    func answerLongPoll(_ context: ChannelHandlerContext, _ state: OrderStreamState) {
        var stream = state
        var events: [PaymentEvent] = []
        for waiting in stream.waiting where waiting.event.seq > stream.lastSent {
            guard waiting.event.seq == stream.lastSent + 1 else { break }
            events.append(waiting.event)
            stream.lastSent = waiting.event.seq
        }
        let gap = events.isEmpty && stream.waiting.contains { $0.event.seq > stream.lastSent + 1 }
        stream.waiting.removeAll()
        if gap { stream.catchingUp = true }
        self.stream = stream
        if gap { return catchUp(stream) }
        guard let last = events.last else { return }
        context.write(wrapOutboundOut(.body(WireFormat.encodeLongPoll(
            orderID: stream.orderID, status: last.status, version: last.seq, events: events))), promise: nil)
        stream.answered = true
        self.stream = stream
        finish(context: context, closeNow: false)
    }

    /// Shutdown: the stream ends at a random moment within the drain period,
    /// so that its clients do not all reconnect to the other instances at once.
    func drain(_ context: ChannelHandlerContext) {
        guard let stream, !stream.ended else { return }
        let delay = stream.drainPeriod * Double.random(in: 0..<1)
        context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) { [self] in finish() }
    }
}
