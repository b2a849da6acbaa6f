import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// One HTTP/2 connection over TLS to a test server, on which a test opens
/// as many streams as it likes: what a browser does with every tab of an
/// origin. Certificates are accepted unverified, and recorded.
final class HTTP2Connection: Sendable {
    private let channel: any Channel
    private let multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>
    private let recorder: ConnectionRecorder
    let port: Int

    private init(channel: any Channel, multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>, recorder: ConnectionRecorder, port: Int) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.recorder = recorder
        self.port = port
    }

    /// The certificate chain the server presented in this connection's handshake.
    var peerCertificates: [NIOSSLCertificate] { recorder.certificates.withLock { $0 } }
    /// What ALPN chose.
    var negotiatedProtocol: String? { recorder.negotiatedProtocol.withLock { $0 } }
    /// The server's SETTINGS, as last announced.
    var serverSettings: [HTTP2SettingsParameter: Int] { recorder.settings.withLock { $0 } }
    var isActive: Bool { channel.isActive }

    /// Connects and completes the TLS handshake, offering only `h2`.
    /// `initialWindowSize` is what this client lets the server send on a
    /// stream before it reads (and grants again as it reads).
    static func connect(port: Int, initialWindowSize: Int = 65535) async throws -> HTTP2Connection {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .noHostnameVerification
        tls.applicationProtocols = ["h2"]
        let context = try NIOSSLContext(configuration: tls)
        let recorder = ConnectionRecorder()
        var configuration = NIOHTTP2Handler.Configuration()
        configuration.connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
            HTTP2Setting(parameter: .initialWindowSize, value: initialWindowSize),
        ]
        // What the client grants again as it reads: a stream it does not read stays at its first window.
        configuration.stream.targetWindowSize = initialWindowSize
        let http2 = configuration
        let (channel, multiplexer) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: nil) { chain, promise in
                            recorder.certificates.withLock { $0 = chain }
                            promise.succeed(.certificateVerified)
                        })
                    try operations.addHandler(HandshakeRecorder(recorder: recorder))
                    let multiplexer = try operations.configureAsyncHTTP2Pipeline(mode: .client, configuration: http2) { stream in
                        stream.eventLoop.makeSucceededVoidFuture()
                    }
                    try operations.addHandler(SettingsRecorder(recorder: recorder))
                    return (channel, multiplexer)
                }
            }
        let connection = HTTP2Connection(channel: channel, multiplexer: multiplexer, recorder: recorder, port: port)
        try await eventually(10, "the TLS handshake") { connection.negotiatedProtocol != nil || !channel.isActive }
        guard connection.negotiatedProtocol == "h2" else {
            throw TestFailure("ALPN chose \(connection.negotiatedProtocol ?? "nothing")")
        }
        return connection
    }

    /// Opens a stream and sends `GET path`, asking for an event stream.
    /// With `reading: false` the stream reads nothing at all: a client that
    /// stopped reading, whose window the server soon fills. `extraWindow`
    /// grants the server that many bytes more on this stream at once, so
    /// that it never waits on this client's window updates.
    func openStream(_ path: String, headers: [(String, String)] = [], reading: Bool = true, extraWindow: Int? = nil) async throws -> HTTP2Stream {
        var fields: HTTPFields = [.accept: "text/event-stream"]
        for (name, value) in headers { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        let stream = try await send(
            HTTPRequest(method: .get, scheme: "https", authority: "127.0.0.1:\(port)", path: path, headerFields: fields), reading: reading)
        if let extraWindow { try await stream.grant(extraWindow) }
        return stream
    }

    /// One whole request on a stream of its own; returns the response and its body.
    func request(_ method: HTTPRequest.Method, _ path: String, headers: HTTPFields = [:], body: String? = nil) async throws
        -> (response: HTTPResponse, body: String)
    {
        let request = HTTPRequest(method: method, scheme: "https", authority: "127.0.0.1:\(port)", path: path, headerFields: headers)
        let stream = try await send(request, body: body.map { ByteBuffer(string: $0) }, reading: true)
        let transcript = try await stream.readRaw()
        guard let head = transcript.head else { throw TestFailure("no response to \(method) \(path)") }
        return (head, transcript.body)
    }

    private func send(_ request: HTTPRequest, body: ByteBuffer? = nil, reading: Bool) async throws -> HTTP2Stream {
        let record = HTTP2StreamRecord()
        let stream = try await multiplexer.openStream { channel in
            channel.eventLoop.makeCompletedFuture {
                if !reading { try channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false) }
                try channel.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTPClientCodec())
                try channel.pipeline.syncOperations.addHandler(HTTP2StreamRecorder(record: record))
                return channel
            }
        }
        stream.write(HTTPRequestPart.head(request), promise: nil)
        if let body { stream.write(HTTPRequestPart.body(body), promise: nil) }
        // Not awaited: beyond the server's stream limit the client holds the
        // request back until a stream ends, and the test watches that.
        stream.writeAndFlush(HTTPRequestPart.end(nil), promise: nil)
        return HTTP2Stream(channel: stream, record: record)
    }

    func close() async {
        try? await channel.close().get()
    }
}

/// One request's stream on an `HTTP2Connection`.
final class HTTP2Stream: StreamReader {
    private let channel: any Channel
    private let record: HTTP2StreamRecord

    fileprivate init(channel: any Channel, record: HTTP2StreamRecord) {
        self.channel = channel
        self.record = record
    }

    /// True once the stream is over (ended by the server, reset, or the connection gone).
    var isClosed: Bool { !channel.isActive }
    /// The error code of the server's RST_STREAM, if it reset the stream.
    var resetCode: NIOHTTP2.HTTP2ErrorCode? { record.reset.withLock { $0 } }

    /// The next part, or nil once the stream is over.
    func nextPart() async -> StreamPart? { await record.parts.next() }

    /// The response and its body as text, for requests that are not streams.
    fileprivate func readRaw(within seconds: Double = 20) async throws -> (head: HTTPResponse?, body: String) {
        let record = self.record
        return try await withTimeout(seconds, "the HTTP/2 response") {
            await record.parts.waitFinished()
            return record.raw.withLock { ($0.head, $0.body) }
        }
    }

    /// Sends WINDOW_UPDATE for this stream (after its request, as the
    /// protocol wants), below the HTTP codec, which knows no such frame.
    fileprivate func grant(_ bytes: Int) async throws {
        let channel = self.channel
        try await channel.eventLoop.flatSubmit {
            do {
                let codec = try channel.pipeline.syncOperations.context(handlerType: HTTP2FramePayloadToHTTPClientCodec.self)
                return codec.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.windowUpdate(windowSizeIncrement: bytes)))
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.get()
    }

    /// Resets the stream, as a browser does for a closed tab's EventSource.
    func cancel() async {
        try? await channel.close().get()
    }
}

/// What one stream delivered: its parts, queued for the test, and besides
/// them the raw response and the code of a reset.
final class HTTP2StreamRecord: Sendable {
    let parts = PartQueue()
    let reset = Mutex<NIOHTTP2.HTTP2ErrorCode?>(nil)
    let raw = Mutex<(head: HTTPResponse?, body: String)>((nil, ""))
}

private final class HTTP2StreamRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPResponsePart

    private let record: HTTP2StreamRecord
    private var parser = SSEParser()

    init(record: HTTP2StreamRecord) {
        self.record = record
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let response):
            guard response.status.kind != .informational else { return }
            record.raw.withLock { $0.head = response }
            var headers = HTTPHeaders()
            for field in response.headerFields { headers.add(name: field.name.rawName, value: field.value) }
            record.parts.push(.head(HTTPResponseHead(version: .http2, status: .init(statusCode: response.status.code), headers: headers)))
        case .body(let buffer):
            let text = String(buffer: buffer)
            record.raw.withLock { $0.body += text }
            for item in parser.feed(text) { record.parts.push(.item(item)) }
        case .end:
            record.parts.push(.end)
            record.parts.finish()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        record.parts.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let closed = error as? NIOHTTP2Errors.StreamClosed {
            record.reset.withLock { $0 = closed.errorCode }
        }
        record.parts.finish()
    }
}

/// What the connection learnt during its handshake and from the server's SETTINGS.
private final class ConnectionRecorder: Sendable {
    let certificates = Mutex<[NIOSSLCertificate]>([])
    let negotiatedProtocol = Mutex<String?>(nil)
    let settings = Mutex<[HTTP2SettingsParameter: Int]>([:])
}

private final class HandshakeRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny
    let recorder: ConnectionRecorder

    init(recorder: ConnectionRecorder) {
        self.recorder = recorder
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
            recorder.negotiatedProtocol.withLock { $0 = negotiated ?? "none" }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

private final class SettingsRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    let recorder: ConnectionRecorder

    init(recorder: ConnectionRecorder) {
        self.recorder = recorder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .settings(.settings(let settings)) = unwrapInboundIn(data).payload {
            recorder.settings.withLock { known in
                for setting in settings { known[setting.parameter] = setting.value }
            }
        }
        context.fireChannelRead(data)
    }
}
