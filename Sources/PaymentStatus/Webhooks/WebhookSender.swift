import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// Makes one attempt of one message: the URL checked again on the addresses
/// its host resolves to now, the body signed, a 2xx within the timeout
/// wanted, redirects not followed (a 3xx is a failure like any other), at
/// most 64 KiB of the answer read and dropped.
final class WebhookSender: Sendable {
    static let timeout: Duration = .seconds(10)
    static let maxResponseBytes = 64 * 1024

    private let client: HTTPClient
    let policy: WebhookURLPolicy
    /// URLs parsed once: Foundation's parser costs more than the rest of an attempt on loopback.
    private let parsedTargets = TargetCache()

    init(policy: WebhookURLPolicy, maxConnectionsPerHost: Int) {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(Self.timeout), read: TimeAmount(Self.timeout)),
            decompression: .disabled)
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerHost)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.policy = policy
    }

    /// Lets requests in flight end, then closes the connections.
    func shutdown() async {
        try? await client.shutdown()
    }

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
            var request = HTTPClientRequest(url: connectionURL(target, addresses))
            request.method = .POST
            let body = WireFormat.webhookBody(message)
            let timestamp = Timestamp.now().millisecondsSince1970 / 1000
            request.headers.add(name: "Host", value: target.hostHeader)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "payment-status-webhooks/1")
            request.headers.add(name: "webhook-id", value: message.id)
            request.headers.add(name: "webhook-timestamp", value: String(timestamp))
            request.headers.add(
                name: "webhook-signature",
                value: WebhookSigner.signatureHeader(
                    id: message.id, timestamp: timestamp, body: body.readableBytesView, secrets: message.secrets))
            request.body = .bytes(body)
            let response = try await client.execute(request, deadline: .now() + TimeAmount(Self.timeout))
            var received = 0
            for try await chunk in response.body {
                received += chunk.readableBytes
                if received >= Self.maxResponseBytes { break }
            }
            let code = Int(response.status.code)
            if (300..<400).contains(code) { return attempt(code, "redirects are not followed") }
            return attempt(code, nil)
        } catch let refused as URLRefused {
            return attempt(nil, refused.description)
        } catch {
            return attempt(nil, Self.describe(error))
        }
    }

    /// https goes to the name (its certificate is checked against it) once
    /// the name's addresses passed; http goes to the checked address itself,
    /// so a name that changes between the check and the connection cannot
    /// take the request elsewhere.
    private func connectionURL(_ target: WebhookTarget, _ addresses: [NetworkAddress]) -> String {
        guard target.scheme == "http", let first = addresses.first else { return target.url }
        return target.url(connectingTo: first)
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
