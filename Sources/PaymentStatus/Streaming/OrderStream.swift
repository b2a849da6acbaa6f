import Hummingbird
import NIOCore

/// One order's event stream, written to one client: the stored history the
/// client has not seen, then live events from the bus, with no gap and no
/// duplicate, until the terminal event, the stream's lifetime, or the client leaves.
struct OrderStream {
    let store: any PaymentStore
    let orderID: String
    /// The client's `Last-Event-ID`: everything after it is sent. Without
    /// one, the stream starts with the order's newest event (its current state).
    let lastEventID: Int?
    let retryMilliseconds: Int
    let metrics: ServiceMetrics

    /// Writes the stream. `subscription` must have been taken before this
    /// is called: subscribing before reading the history is what closes the
    /// window in which an event could commit unseen.
    func write(to writer: inout some ResponseBodyWriter, subscription: EventSubscription) async throws {
        defer { subscription.cancel() }
        try await writer.write(SSEFrame.retry(milliseconds: retryMilliseconds))

        var lastSent = lastEventID ?? 0
        let history: [PaymentEvent]
        if lastEventID == nil {
            history = try await store.latestEvent(orderID: orderID).map { [$0] } ?? []
        } else {
            history = try await store.events(orderID: orderID, after: lastSent, limit: .max)
        }
        for event in history {
            if try await send(event, frame: SSEFrame.status(event), lastSent: &lastSent, to: &writer) { return }
        }

        for await signal in subscription.signals {
            switch signal {
            case .heartbeat:
                try await writer.write(SSEFrame.keepAlive)
            case .event(let event, let frame, let publishedAt):
                guard event.seq > lastSent else { continue }  // already sent from the history
                if event.seq > lastSent + 1 {
                    // Publication raced past an earlier commit: the missing
                    // events are already stored, so read them instead of waiting.
                    let missing = try await store.events(orderID: orderID, after: lastSent, limit: event.seq - lastSent - 1)
                    for earlier in missing {
                        if try await send(earlier, frame: SSEFrame.status(earlier), lastSent: &lastSent, to: &writer) { return }
                    }
                }
                let terminal = try await send(event, frame: frame, lastSent: &lastSent, to: &writer)
                metrics.eventPushed(after: ContinuousClock.now - publishedAt)
                if terminal { return }
            }
        }
        // The bus ended the subscription (lifetime, fell behind, shutdown, client
        // gone): the response ends and the client resumes by Last-Event-ID.
    }

    /// Writes one event; returns true when it was the terminal one.
    private func send(_ event: PaymentEvent, frame: ByteBuffer, lastSent: inout Int, to writer: inout some ResponseBodyWriter) async throws -> Bool {
        try await writer.write(frame)
        lastSent = event.seq
        return event.status.isTerminal
    }
}
