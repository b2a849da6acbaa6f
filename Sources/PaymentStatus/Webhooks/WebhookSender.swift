import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// Makes one attempt of one message: the URL checked again on the addresses
/// its host resolves to now, and the connection made to the first of those
/// very addresses (an `http` URL by address, an `https` one through a client
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
            timeout: .init(connect: TimeAmount(Self.timeout), read: TimeAmount(Self.timeout)),
            decompression: .disabled)
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerHost)
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
            guard let address = addresses.first else { throw URLRefused("has a host that resolves to no address") }
            let pinsTheName = target.scheme == "https" && NetworkAddress(literal: target.host) == nil
            var request = HTTPClientRequest(url: pinsTheName ? target.url : target.url(connectingTo: address))
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
            let deadline = NIODeadline.now() + TimeAmount(Self.timeout)
            let code =
                pinsTheName
                ? try await pinned.with(host: target.host, address: address) { try await Self.post(request, deadline, on: $0) }
                : try await Self.post(request, deadline, on: client)
            if (300..<400).contains(code) { return attempt(code, "redirects are not followed") }
            return attempt(code, nil)
        } catch let refused as URLRefused {
            return attempt(nil, refused.description)
        } catch {
            return attempt(nil, Self.describe(error))
        }
    }

    /// Sends the request and reads at most 64 KiB of the answer; its status code.
    private static func post(_ request: HTTPClientRequest, _ deadline: NIODeadline, on client: HTTPClient) async throws -> Int {
        let response = try await client.execute(request, deadline: deadline)
        var received = 0
        for try await chunk in response.body {
            received += chunk.readableBytes
            if received >= maxResponseBytes { break }
        }
        return Int(response.status.code)
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
