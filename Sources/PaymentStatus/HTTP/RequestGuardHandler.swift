import HTTPTypes
import NIOCore
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// One per HTTP/1.1 connection, right after the HTTP codec: the rules about
/// request framing that the framework leaves to the application, each of
/// which a hostile or broken client could otherwise turn against the service.
///
/// - A request body has a total deadline (`bodyTimeout`), as the head has
///   through the idle timeout: a body still arriving then is answered 408 and
///   the connection closed, so that a client dripping a byte every few
///   seconds cannot hold a connection and its buffer for ever.
/// - A response that ends before its request's body was read (a 401 or a
///   413 answered without reading) closes the connection: reading the rest
///   would only let the client keep it open, and the unread bytes cannot be
///   trusted to frame the next request.
/// - A `Transfer-Encoding` other than `chunked` is answered 501 and closed
///   here, and a body the parser rejects halfway closes the connection after
///   one answer: a proxy in front must never see two responses to one request.
/// - `Expect: 100-continue` gets `100 Continue`; any other expectation 417.
/// - On shutdown, a body still arriving gets at most the drain period.
final class RequestGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let bodyTimeout: TimeAmount
    private let drainPeriod: TimeAmount
    /// Requests whose head was read, and responses that ended: equal when no
    /// request is waiting for its answer.
    private var requestsRead = 0
    private var responsesEnded = 0
    /// The newest request's body has been read to its end.
    private var bodyComplete = true
    private var responseStarted = false
    /// This handler answered the connection itself: nothing else may write.
    private var answeredHere = false
    private var bodyDeadline: Scheduled<Void>?

    init(bodyTimeout: Duration, drainPeriod: Duration) {
        self.bodyTimeout = TimeAmount(bodyTimeout)
        self.drainPeriod = TimeAmount(drainPeriod)
    }

    /// On an HTTP/1 connection, also puts the handler that answers HTTP/1.0
    /// clients in their version next to the codec, where the version is known.
    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        if let codec = try? pipeline.handler(type: HTTP1ToHTTPServerCodec.self) {
            try? pipeline.addHandler(HTTP10ResponseHandler(), position: .before(codec))
        }
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answeredHere else { return }
        switch unwrapInboundIn(data) {
        case .head(let request):
            if let refusal = Self.refusal(of: request) { return answer(refusal.status, refusal.detail, context: context) }
            requestsRead += 1
            bodyComplete = false
            responseStarted = false
            if let expect = request.headerFields[.expect], expect.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
            if Self.hasBody(request) { armBodyDeadline(context: context) }
            context.fireChannelRead(data)
        case .body:
            context.fireChannelRead(data)
        case .end:
            bodyComplete = true
            bodyDeadline?.cancel()
            bodyDeadline = nil
            context.fireChannelRead(data)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The parser gave up inside a request that is still being answered:
        // that one answer is the connection's last.
        guard requestsRead > responsesEnded, !answeredHere else { return context.fireErrorCaught(error) }
        bodyComplete = false
        if !responseStarted { return answer(.badRequest, "the request could not be parsed", context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, !bodyComplete {
            // A body still arriving at shutdown: it gets the drain period, not the client's patience.
            bodyDeadline?.cancel()
            bodyDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: drainPeriod) { [self] in
                timedOut(context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        bodyDeadline?.cancel()
        context.fireChannelInactive()
    }

    // MARK: - Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !answeredHere else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(let response) where response.status.kind != .informational:
            responseStarted = true
            context.write(data, promise: promise)
        case .end:
            responsesEnded += 1
            if responsesEnded >= requestsRead, !bodyComplete {
                // The body was not read (or could not be): close behind this answer.
                context.writeAndFlush(data).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                promise?.succeed()
                return
            }
            context.write(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }

    // MARK: - Rules

    /// A request refused before it reaches the routes: an expectation the
    /// service does not meet, or a framing it does not implement.
    static func refusal(of request: HTTPRequest) -> (status: HTTPResponse.Status, detail: String)? {
        if let expect = request.headerFields[.expect], expect.lowercased() != "100-continue" {
            return (.expectationFailed, "the only expectation served is 100-continue")
        }
        if let coding = request.headerFields[.transferEncoding], coding.trimmed.lowercased() != "chunked" {
            return (.notImplemented, "the only transfer coding accepted on requests is chunked")
        }
        return nil
    }

    static func hasBody(_ request: HTTPRequest) -> Bool {
        request.headerFields[.transferEncoding] != nil || request.headerFields[.contentLength].map { $0 != "0" } ?? false
    }

    private func armBodyDeadline(context: ChannelHandlerContext) {
        bodyDeadline?.cancel()
        bodyDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: bodyTimeout) { [self] in
            timedOut(context: context)
        }
    }

    private func timedOut(context: ChannelHandlerContext) {
        guard !bodyComplete, context.channel.isActive else { return }
        guard !responseStarted else { return context.close(promise: nil) }
        answer(.requestTimeout, "the request body did not arrive in time", context: context)
    }

    /// Answers the connection's current request here with a problem and
    /// closes it; whatever the routes write after that is dropped.
    private func answer(_ status: HTTPResponse.Status, _ detail: String, context: ChannelHandlerContext) {
        answeredHere = true
        bodyDeadline?.cancel()
        let body = APIError(status, detail: detail).body
        let head = HTTPResponse(status: status, headerFields: [
            .contentType: "application/problem+json", .contentLength: String(body.readableBytes), .connection: "close",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
