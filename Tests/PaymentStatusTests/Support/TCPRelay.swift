import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on loopback in front of a server, whose open connections can
/// go dark: bytes stop flowing both ways while both sockets stay open, as
/// when the path to a database dies without a reset (a failover, a dropped
/// route, a firewall forgetting the connection). Connections opened after
/// that pass as before. Or one connection's answers stop after it sends a
/// `COMMIT`, which the server gets: a commit whose answer was lost.
final class TCPRelay: Sendable {
    let port: Int
    private let server: any Channel
    private let open = OpenPairs()

    /// The connections that have not gone dark yet.
    private final class OpenPairs: Sendable {
        let pairs = Mutex<[Pair]>([])
        /// Armed by `loseTheAnswerToTheNextCommit`.
        let loseNextCommitAnswer = Atomic<Bool>(false)
    }

    /// The flags both directions of one relayed connection read.
    private final class Pair: Sendable {
        let dark = Atomic<Bool>(false)
        /// The server's bytes are dropped; the client's still pass.
        let answersLost = Atomic<Bool>(false)
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
                            try outbound.pipeline.syncOperations.addHandler(Forward(to: inbound, pair, carrying: .answers))
                        }
                    }
                    .connect(host: host, port: target)
                    .flatMapThrowing { outbound in
                        try inbound.pipeline.syncOperations.addHandler(
                            Forward(to: outbound, pair, carrying: .requests(open)))
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

    /// The next connection to send `COMMIT` gets no answer to it, nor any
    /// later one, while the server gets it and everything after it.
    func loseTheAnswerToTheNextCommit() {
        open.loseNextCommitAnswer.store(true, ordering: .relaxed)
    }

    func stop() async {
        try? await server.close()
    }

    /// Writes what one side reads to the other, unless the connection went dark.
    private final class Forward: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        enum Direction: Sendable {
            case requests(OpenPairs)
            case answers
        }
        let partner: any Channel
        let pair: Pair
        let direction: Direction
        init(to partner: any Channel, _ pair: Pair, carrying direction: Direction) {
            self.partner = partner
            self.pair = pair
            self.direction = direction
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !pair.dark.load(ordering: .relaxed) else { return }
            let bytes = unwrapInboundIn(data)
            switch direction {
            case .answers:
                if pair.answersLost.load(ordering: .relaxed) { return }
            case .requests(let open):
                if open.loseNextCommitAnswer.load(ordering: .relaxed), String(buffer: bytes).contains("COMMIT"),
                    open.loseNextCommitAnswer.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged
                {
                    pair.answersLost.store(true, ordering: .relaxed)
                }
            }
            partner.writeAndFlush(bytes, promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !pair.dark.load(ordering: .relaxed) { partner.close(promise: nil) }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
