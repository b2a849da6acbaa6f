import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// An `https` webhook receiver on a loopback address with the given certificate: it
/// answers every request 204 and keeps each one's `Host` header, so a test
/// sees which requests reached it.
final class TLSReceiver: Sendable {
    let port: Int
    private let channel: any Channel
    private let recorded = Recorded()

    /// The `Host` header of every request received, in order.
    var receivedHosts: [String] { recorded.hosts.withLock { $0 } }

    private final class Recorded: Sendable {
        let hosts = Mutex<[String]>([])
    }

    init(certificate: TestCertificate, host: String = "127.0.0.1", port requested: Int = 0) async throws {
        let context = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.key, format: .pem))))
        let recorded = recorded
        let record: @Sendable (String) -> Void = { host in recorded.hosts.withLock { $0.append(host) } }
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Answer(record: record))
                }
            }
            .bind(host: host, port: requested).get()
        port = channel.localAddress?.port ?? 0
    }

    func stop() async {
        try? await channel.close()
    }

    private final class Answer: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let record: @Sendable (String) -> Void
        init(record: @escaping @Sendable (String) -> Void) { self.record = record }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): record(head.headers["Host"].first ?? "")
            case .body: break
            case .end:
                let head = HTTPResponseHead(version: .http1_1, status: .noContent, headers: ["Content-Length": "0"])
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
