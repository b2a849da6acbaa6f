import HummingbirdCore
import Logging
import NIOCore
import NIOSSL

/// The TLS server's connections (Hummingbird's HTTP/2-or-HTTP/1.1 channel),
/// with two handlers of ours right behind the TLS handler: a deadline on the
/// handshake, and a flush before the connection is closed.
struct TLSServerChannel<Inner: ServerChildChannel>: ServerChildChannel {
    let inner: Inner
    let handshakeDeadline: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Inner.Value> {
        let value = inner.setup(channel: channel, logger: logger)
        do {
            // Between the TLS handler and whatever ALPN puts after it.
            let operations = channel.pipeline.syncOperations
            let tls = try operations.handler(type: NIOSSLServerHandler.self)
            try operations.addHandler(FlushBeforeCloseHandler(), position: .after(tls))
            try operations.addHandler(HandshakeDeadlineHandler(deadline: handshakeDeadline), position: .after(tls))
        } catch {
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
        return value
    }

    func handle(value: Inner.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
