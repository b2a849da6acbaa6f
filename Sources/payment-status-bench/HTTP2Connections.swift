import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import Synchronization

/// The HTTP/2 connections (over TLS, ALPN `h2`) that a stream group
/// multiplexes its streams over: stream `i` goes on connection
/// `i / perConnection`, which is opened with its first stream. Each stream
/// is a child channel that speaks HTTP/1-style parts through NIO's codec, so
/// the same SSE handler parses it as over HTTP/1.1.
final class HTTP2Connections: Sendable {
    private let eventLoopGroup: EventLoopGroup
    private let server: ServerAddress
    let perConnection: Int
    private let connections = Mutex<[Int: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>]>([:])
    private let channels = Mutex<[Channel]>([])

    init(eventLoopGroup: EventLoopGroup, server: ServerAddress, perConnection: Int) {
        self.eventLoopGroup = eventLoopGroup
        self.server = server
        self.perConnection = max(perConnection, 1)
    }

    /// Opens stream `index` on its connection; `initializer` adds the stream's handlers.
    func openStream(index: Int, initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        connection(index / perConnection).flatMap { multiplexer in
            multiplexer.createStreamChannel { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .https))
                }.flatMap { initializer(child) }
            }
        }
    }

    /// Connections opened so far (each may carry up to `perConnection` streams).
    var count: Int { channels.withLock { $0.count } }

    /// Closes every connection, and with it every stream on it.
    func closeAll() {
        let all = channels.withLock { channels -> [Channel] in
            defer { channels = [] }
            return channels
        }
        for future in all.map({ $0.close() }) { _ = try? future.wait() }
    }

    private func connection(_ number: Int) -> EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer> {
        connections.withLock { open in
            if let existing = open[number] { return existing }
            let loop = eventLoopGroup.next()
            let ready = loop.makePromise(of: NIOHTTP2Handler.StreamMultiplexer.self)
            ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(30))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let operations = channel.pipeline.syncOperations
                        try operations.addHandler(ClientTLS.handler(ClientTLS.http2))
                        let multiplexer = try operations.configureHTTP2Pipeline(
                            mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                        ) { stream in stream.close() }  // the server pushes no streams of its own
                        ready.succeed(multiplexer)
                    }
                }
                .connect(host: server.host, port: server.port)
                .whenComplete { result in
                    switch result {
                    case .success(let channel): self.channels.withLock { $0.append(channel) }
                    case .failure(let error): ready.fail(error)
                    }
                }
            open[number] = ready.futureResult
            return ready.futureResult
        }
    }
}
