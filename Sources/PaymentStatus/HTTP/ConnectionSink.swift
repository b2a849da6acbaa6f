import NIOCore

/// The hub's side of a connection's stream: hops every signal to the
/// connection's event loop, where its `SSEConnectionHandler` lives.
final class ConnectionSink: StreamSink {
    let handler: NIOLoopBound<SSEConnectionHandler>

    init(handler: NIOLoopBound<SSEConnectionHandler>) {
        self.handler = handler
    }

    func receive(_ signal: StreamSignal) {
        let handler = self.handler
        handler.eventLoop.execute { handler.value.receive(signal) }
    }

    func end() {
        let handler = self.handler
        handler.eventLoop.execute { handler.value.hubEnded() }
    }
}
