import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on loopback in front of a server, whose open connections can
/// go dark: bytes stop flowing both ways while both sockets stay open, as
/// when the path to a database dies without a reset (a failover, a dropped
/// route, a firewall forgetting the connection). Connections opened after
/// that pass as before.
final class TCPRelay: Sendable {
    let port: Int
    private let server: any Channel
    private let open = OpenPairs()

    /// The connections that have not gone dark yet.
    private final class OpenPairs: Sendable {
        let pairs = Mutex<[Pair]>([])
    }

    /// The flag both directions of one relayed connection read.
    private final class Pair: Sendable {
        let dark = Atomic<Bool>(false)
    }

    init(to host: String, port target: Int) async throws {
        let open = open
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                let pair = Pair()
                open.pairs.withLock { $0.append(pair) }
                return ClientBootstrap(group: inbound.eventLoop)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture {
                            try outbound.pipeline.syncOperations.addHandler(Forward(to: inbound, pair))
                        }
                    }
                    .connect(host: host, port: target)
                    .flatMapThrowing { outbound in
                        try inbound.pipeline.syncOperations.addHandler(Forward(to: outbound, pair))
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = server.localAddress?.port ?? 0
    }

    /// Every connection open now stops carrying bytes, and neither end is told.
    func goDark() {
        open.pairs.withLock { pairs in
            for pair in pairs { pair.dark.store(true, ordering: .relaxed) }
            pairs.removeAll()
        }
    }

    func stop() async {
        try? await server.close()
    }

    /// Writes what one side reads to the other, unless the connection went dark.
    private final class Forward: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let partner: any Channel
        let pair: Pair
        init(to partner: any Channel, _ pair: Pair) {
            self.partner = partner
            self.pair = pair
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !pair.dark.load(ordering: .relaxed) else { return }
            partner.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !pair.dark.load(ordering: .relaxed) { partner.close(promise: nil) }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
