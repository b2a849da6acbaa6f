import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Makes one attempt of one message: the URL checked again on the addresses
/// its host resolves to now, and the connection made to the first of those
/// very addresses that takes it (an `http` URL by address, an `https` one through a client
/// pinned to it, its certificate checked against the name), so a name that
/// changes after the check cannot take the attempt elsewhere; the body
/// signed, a 2xx within the timeout wanted, redirects not followed (a 3xx is
/// a failure like any other), at most 64 KiB of the answer read and dropped.
final class WebhookSender: Sendable {
    static let timeout: Duration = .seconds(10)
    static let maxResponseBytes = 64 * 1024

    /// For `http` URLs (sent to the checked address itself) and `https` ones
    /// whose host is an address.
    private let client: HTTPClient
    /// For `https` URLs with a host name: connected to the checked address.
    private let pinned: PinnedClients
    let policy: WebhookURLPolicy
    /// URLs parsed once: Foundation's parser costs more than the rest of an attempt on loopback.
    private let parsedTargets = TargetCache()

    init(policy: WebhookURLPolicy, maxConnectionsPerHost: Int, extraTrustRoots: [NIOSSLCertificate] = []) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = extraTrustRoots.isEmpty ? [] : [.certificates(extraTrustRoots)]
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            // No read timeout: each attempt has a deadline of `timeout` for the
            // whole exchange, and a read timeout is a timer set and cancelled
            // at every read, which the drain paid for (BENCHMARKS.md).
            timeout: .init(connect: TimeAmount(Self.timeout)),
            decompression: .disabled)
        // No tracing spans: the service bootstraps no tracer, and the
        // default no-op one still built a span and its attributes per attempt.
        configuration.tracing.tracer = nil
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerHost)
        // A refused connection fails the attempt at once (the next address is
        // tried, or the message waits for its retry) instead of being tried
        // again until the timeout, holding a delivery slot 10 s per attempt
        // to a receiver that is down.
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        pinned = PinnedClients(configuration: configuration)
        self.policy = policy
    }

    /// Closes the connections; attempts still in flight are cut.
    func shutdown() async {
        await pinned.shutdown()
        try? await client.shutdown()
    }

    /// How many pinned `https` clients are open (for tests).
    var pinnedClientCount: Int { pinned.count }

    func send(_ message: OutboundMessage) async -> WebhookAttempt {
        let at = Timestamp.now()
        let started = ContinuousClock.now
        func attempt(_ status: Int?, _ error: String?) -> WebhookAttempt {
            let elapsed = ContinuousClock.now - started
            return WebhookAttempt(
                at: at, statusCode: status, error: error, durationMilliseconds: Int(elapsed.nanoseconds / 1_000_000))
        }
        do {
            let target = try parsedTargets.target(of: message.url, policy: policy)
            let addresses = try await policy.addresses(of: target)
            guard !addresses.isEmpty else { throw URLRefused("has a host that resolves to no address") }
            let pinsTheName = target.scheme == "https" && NetworkAddress(literal: target.host) == nil
            let body = WireFormat.webhookBody(message)
            let timestamp = Timestamp.now().millisecondsSince1970 / 1000
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: target.hostHeader)
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "User-Agent", value: "payment-status-webhooks/1")
            headers.add(name: "webhook-id", value: message.id)
            headers.add(name: "webhook-timestamp", value: String(timestamp))
            headers.add(
                name: "webhook-signature",
                value: WebhookSigner.signatureHeader(
                    id: message.id, timestamp: timestamp, body: body.readableBytesView, secrets: message.secrets))
            let deadline = NIODeadline.now() + TimeAmount(Self.timeout)
            let code = try await Self.firstTaking(addresses, deadline) { address in
                // A pinned client connects the name to `address`; otherwise the URL names the address.
                let url = pinsTheName ? target.url : target.url(connectingTo: address)
                let request = try HTTPClient.Request(url: url, method: .POST, headers: headers, body: .byteBuffer(body))
                if pinsTheName {
                    return try await pinned.with(host: target.host, address: address) { try await Self.post(request, deadline, on: $0) }
                }
                return try await Self.post(request, deadline, on: client)
            }
            if (300..<400).contains(code) { return attempt(code, "redirects are not followed") }
            return attempt(code, nil)
        } catch let refused as URLRefused {
            return attempt(nil, refused.description)
        } catch {
            return attempt(nil, Self.describe(error))
        }
    }

    /// `attempt` on the checked addresses, in the resolver's order of
    /// preference, until one takes the connection: the next one is tried
    /// when one refuses it (nothing was sent yet), as a client given the
    /// name would, all within the one timeout.
    private static func firstTaking(
        _ addresses: [NetworkAddress], _ deadline: NIODeadline, _ attempt: (NetworkAddress) async throws -> Int
    ) async throws -> Int {
        for address in addresses.dropLast() {
            do { return try await attempt(address) } catch where neverConnected(error) && NIODeadline.now() < deadline {}
        }
        return try await attempt(addresses[addresses.count - 1])
    }

    /// Sends the request and reads at most 64 KiB of the answer; its status
    /// code. The deadline holds until the answer has been read: AsyncHTTPClient's
    /// async `execute` lets it go once the head is in, and a receiver sending
    /// its body a byte at a time would then hold the attempt for hours.
    private static func post(_ request: HTTPClient.Request, _ deadline: NIODeadline, on client: HTTPClient) async throws -> Int {
        let task = client.execute(request: request, delegate: StatusOfAnswer(), deadline: deadline)
        do {
            return try await withTaskCancellationHandler { try await task.get() } onCancel: { task.cancel() }
        } catch let enough as StatusOfAnswer.EnoughRead {
            return enough.status
        }
    }

    /// Whether the attempt failed before a connection was made, so that
    /// nothing was sent and another address may be tried.
    static func neverConnected(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let io = error as? IOError { return [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(io.errnoCode) }
        if let channel = error as? ChannelError, case .connectTimeout = channel { return true }
        if let client = error as? HTTPClientError { return client == .connectTimeout }
        return false
    }

    /// A short, stable description for the attempt's `error`.
    static func describe(_ error: any Error) -> String {
        if let client = error as? HTTPClientError {
            switch client {
            case .deadlineExceeded, .readTimeout: return "no answer within \(timeout)"
            case .connectTimeout: return "could not connect within \(timeout)"
            case .remoteConnectionClosed: return "the receiver closed the connection before answering"
            default: return "\(client)".prefix(200).description
            }
        }
        return "\(error)".prefix(200).description
    }
}

/// Keeps an answer's status code and drops its body, reading at most
/// `WebhookSender.maxResponseBytes` of it: past that the request is ended
/// (the connection closed) and the status stands.
private final class StatusOfAnswer: HTTPClientResponseDelegate {
    typealias Response = Int
    /// The status code, and the body's bytes so far.
    private let state = Mutex((status: 0, received: 0))

    struct EnoughRead: Error {
        let status: Int
    }

    func didReceiveHead(task: HTTPClient.Task<Int>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLock { $0.status = Int(head.status.code) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Int>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let (status, enough) = state.withLock { state in
            state.received += buffer.readableBytes
            return (state.status, state.received >= WebhookSender.maxResponseBytes)
        }
        return enough ? task.eventLoop.makeFailedFuture(EnoughRead(status: status)) : task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Int>) throws -> Int {
        state.withLock { $0.status }
    }
}

/// The last few hundred URLs' parts (what `WebhookURLPolicy.target(of:)`
/// made of them). Only the form is kept: the addresses are resolved again at
/// every attempt.
private final class TargetCache: Sendable {
    private let targets = Mutex([String: WebhookTarget]())
    private static let capacity = 512

    func target(of url: String, policy: WebhookURLPolicy) throws(URLRefused) -> WebhookTarget {
        if let known = targets.withLock({ $0[url] }) { return known }
        let target = try policy.target(of: url)
        targets.withLock { targets in
            if targets.count >= Self.capacity { targets.removeAll(keepingCapacity: true) }
            targets[url] = target
        }
        return target
    }
}
