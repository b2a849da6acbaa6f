import NIOCore
import NIOPosix
import Synchronization

/// A bare TCP connection for hostile-client tests: send arbitrary bytes,
/// read whatever comes back, notice when the server closes.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let received: ReceivedBytes

    private init(channel: any Channel, received: ReceivedBytes) {
        self.channel = channel
        self.received = received
    }

    static func open(port: Int) async throws -> RawConnection {
        let received = ReceivedBytes()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    /// Everything the server sent so far.
    var text: String { received.text }
    var isClosedByServer: Bool { received.closed }

    func close() async {
        try? await channel.close().get()
    }
}

final class ReceivedBytes: Sendable {
    private let state = Mutex((text: "", closed: false))
    func append(_ text: String) { state.withLock { $0.text += text } }
    func markClosed() { state.withLock { $0.closed = true } }
    var text: String { state.withLock { $0.text } }
    var closed: Bool { state.withLock { $0.closed } }
}

private final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received: ReceivedBytes

    init(received: ReceivedBytes) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.append(String(buffer: unwrapInboundIn(data)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        received.markClosed()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
