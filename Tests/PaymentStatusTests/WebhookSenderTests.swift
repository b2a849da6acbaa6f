import AsyncHTTPClient
import Foundation
import NIOSSL
import Synchronization
import Testing
@testable import PaymentStatus

/// One `https` attempt against a real TLS receiver on loopback: it goes to
/// the address the URL check passed, and the certificate is still checked
/// against the URL's name.
///
/// The name is `receiver.invalid`, which no resolver answers (RFC 6761), so
/// the policy is given a resolver that answers 127.0.0.1 for it: the stand-in
/// for a name whose answer changes between the check and the connection. An
/// attempt that resolved the name again instead of using the checked address
/// could not connect at all.
@Suite("Webhook sender over https", .timeLimit(.minutes(1)))
struct WebhookSenderTests {
    static let name = "receiver.invalid"

    /// A policy whose resolver answers `answers` for `receiver.invalid`, one
    /// per lookup (the last one from then on), and counts the lookups.
    static func policy(answering answers: [String] = ["127.0.0.1"], lookups: Lookups = Lookups()) -> WebhookURLPolicy {
        var policy = WebhookURLPolicy(allowHTTP: false, allowPrivateNetworks: true)
        let addresses = answers.map { NetworkAddress(literal: $0)! }
        policy.resolve = { host in
            let index = lookups.next()
            guard host == name else { return .failure(ResolutionFailed(host: host, reason: "not in this test")) }
            return .success([addresses[min(index, addresses.count - 1)]])
        }
        return policy
    }

    final class Lookups: Sendable {
        private let made = Mutex(0)
        var count: Int { made.withLock { $0 } }
        func next() -> Int { made.withLock { count in defer { count += 1 }; return count } }
    }

    static func message(to url: String) -> OutboundMessage {
        OutboundMessage(
            id: "msg_test", endpointID: "ep_test", orderID: "order-1", seq: 1, data: #"{"event":{},"order":{}}"#,
            createdAt: .now(), attemptCount: 0, attemptsAllowed: nil, url: url, secrets: ["whsec_dGVzdA=="])
    }

    @Test func anAttemptGoesToTheCheckedAddressAndChecksTheCertificateAgainstTheName() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let certificate = try TestCertificate.selfSigned(in: folder.path, name: "receiver", subjectAltName: "DNS:\(Self.name)")
        let receiver = try await TLSReceiver(certificate: certificate)
        let lookups = Lookups()
        let sender = WebhookSender(
            policy: Self.policy(lookups: lookups), maxConnectionsPerHost: 4,
            extraTrustRoots: try NIOSSLCertificate.fromPEMFile(certificate.certificate))
        let url = "https://\(Self.name):\(receiver.port)/hooks"
        let first = await sender.send(Self.message(to: url))
        let second = await sender.send(Self.message(to: url))
        await sender.shutdown()
        await receiver.stop()
        #expect(first.statusCode == 204, "\(first)")
        #expect(second.statusCode == 204, "\(second)")
        #expect(receiver.receivedHosts == ["\(Self.name):\(receiver.port)", "\(Self.name):\(receiver.port)"])
        #expect(lookups.count == 2, "the address is checked again at each attempt")
    }

    @Test func aCertificateForAnotherNameFails() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        // Trusted, but for another name only. (NIOSSL also accepts a certificate
        // naming the address connected to, whatever the URL's name: one for
        // IP:127.0.0.1 would pass here, as it would without the pinning.)
        let certificate = try TestCertificate.selfSigned(in: folder.path, name: "elsewhere", subjectAltName: "DNS:localhost")
        let receiver = try await TLSReceiver(certificate: certificate)
        let sender = WebhookSender(
            policy: Self.policy(), maxConnectionsPerHost: 4,
            extraTrustRoots: try NIOSSLCertificate.fromPEMFile(certificate.certificate))
        let attempt = await sender.send(Self.message(to: "https://\(Self.name):\(receiver.port)/hooks"))
        await sender.shutdown()
        await receiver.stop()
        #expect(attempt.statusCode == nil)
        #expect(attempt.error != nil)
        #expect(receiver.receivedHosts.isEmpty, "a request was sent over a connection whose certificate does not name the host")
    }

    @Test func anUntrustedCertificateFails() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let certificate = try TestCertificate.selfSigned(in: folder.path, name: "receiver", subjectAltName: "DNS:\(Self.name)")
        let receiver = try await TLSReceiver(certificate: certificate)
        let sender = WebhookSender(policy: Self.policy(), maxConnectionsPerHost: 4)
        let attempt = await sender.send(Self.message(to: "https://\(Self.name):\(receiver.port)/hooks"))
        await sender.shutdown()
        await receiver.stop()
        #expect(attempt.statusCode == nil)
        #expect(receiver.receivedHosts.isEmpty)
    }

    @Test func anAddressRefusedAtTheAttemptIsNotConnectedTo() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let certificate = try TestCertificate.selfSigned(in: folder.path, name: "receiver", subjectAltName: "DNS:\(Self.name)")
        let receiver = try await TLSReceiver(certificate: certificate)
        var strict = Self.policy()
        strict.allowPrivateNetworks = false
        let sender = WebhookSender(
            policy: strict, maxConnectionsPerHost: 4, extraTrustRoots: try NIOSSLCertificate.fromPEMFile(certificate.certificate))
        let attempt = await sender.send(Self.message(to: "https://\(Self.name):\(receiver.port)/hooks"))
        await sender.shutdown()
        await receiver.stop()
        #expect(attempt.statusCode == nil)
        #expect(attempt.error?.contains("loopback") == true, "\(attempt)")
        #expect(receiver.receivedHosts.isEmpty)
    }

    @Test func aNameMovedToAnotherAddressIsFollowedAtTheNextAttempt() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let certificate = try TestCertificate.selfSigned(in: folder.path, name: "receiver", subjectAltName: "DNS:\(Self.name)")
        let here = try await TLSReceiver(certificate: certificate, host: "127.0.0.1")
        let there = try await TLSReceiver(certificate: certificate, host: "127.0.0.2", port: here.port)
        let sender = WebhookSender(
            policy: Self.policy(answering: ["127.0.0.1", "127.0.0.2"]), maxConnectionsPerHost: 4,
            extraTrustRoots: try NIOSSLCertificate.fromPEMFile(certificate.certificate))
        let url = "https://\(Self.name):\(here.port)/hooks"
        let first = await sender.send(Self.message(to: url))
        let second = await sender.send(Self.message(to: url))
        let clients = sender.pinnedClientCount
        await sender.shutdown()
        await here.stop()
        await there.stop()
        #expect(first.statusCode == 204 && second.statusCode == 204, "\(first) \(second)")
        #expect(here.receivedHosts.count == 1 && there.receivedHosts.count == 1, "\(here.receivedHosts) \(there.receivedHosts)")
        #expect(clients == 2)
    }

    /// A name that resolves to two addresses, the first refusing connections
    /// (nothing listens on 127.0.0.3): the attempt connects to the second
    /// straight away, as a client given the name would, instead of failing
    /// or waiting out its timeout on the first.
    @Test func anAddressThatRefusesTheConnectionGivesWayToTheNext() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let certificate = try TestCertificate.selfSigned(in: folder.path, name: "receiver", subjectAltName: "DNS:\(Self.name)")
        let receiver = try await TLSReceiver(certificate: certificate)
        var policy = WebhookURLPolicy(allowHTTP: true, allowPrivateNetworks: true)
        policy.resolve = { host in
            if let literal = NetworkAddress(literal: host) { return .success([literal]) }
            guard host == Self.name else { return .failure(ResolutionFailed(host: host, reason: "not in this test")) }
            return .success(["127.0.0.3", "127.0.0.1"].map { NetworkAddress(literal: $0)! })
        }
        let sender = WebhookSender(
            policy: policy, maxConnectionsPerHost: 4, extraTrustRoots: try NIOSSLCertificate.fromPEMFile(certificate.certificate))
        let https = await sender.send(Self.message(to: "https://\(Self.name):\(receiver.port)/hooks"))
        let refused = await sender.send(Self.message(to: "http://127.0.0.3:\(receiver.port)/hooks"))
        await sender.shutdown()
        await receiver.stop()
        #expect(https.statusCode == 204, "\(https)")
        #expect(receiver.receivedHosts == ["\(Self.name):\(receiver.port)"])
        // Alone, the refusing address fails the attempt, saying so.
        #expect(refused.statusCode == nil && refused.error?.contains("refused") == true, "\(refused)")
    }

    @Test func pastItsCapacityAClientIsClosedWhenItsLastAttemptEnds() async throws {
        let clients = PinnedClients(configuration: HTTPClient.Configuration(), capacity: 1)
        let one = NetworkAddress(literal: "127.0.0.1")!
        let two = NetworkAddress(literal: "127.0.0.2")!
        let idle = try await clients.with(host: "one.invalid", address: one) { $0 }
        let (busy, evicted) = try await clients.with(host: "two.invalid", address: two) { busy in
            // `idle` is closed as `two` comes in; `busy` stays open while used.
            let evicted = await Self.isShutDown(idle)
            let (third, busyStillOpen) = try await clients.with(host: "three.invalid", address: one) { third in
                (third, !(await Self.isShutDown(busy, probing: false)))
            }
            #expect(busyStillOpen)
            #expect(third !== busy)
            return (busy, evicted)
        }
        #expect(evicted, "an idle client was left open past the capacity")
        #expect(await Self.isShutDown(busy), "a retired client was left open after its last attempt")
        #expect(clients.count == 1)
        await clients.shutdown()
        #expect(clients.count == 0)
    }

    /// Whether `client` is shut down (or shutting down). Probing shuts it down
    /// if it was not; with `probing: false` a request is tried instead.
    static func isShutDown(_ client: HTTPClient, probing: Bool = true) async -> Bool {
        if probing {
            do { try await client.shutdown() } catch let error as HTTPClientError where error == .alreadyShutdown { return true } catch {}
            return false
        }
        do { _ = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:9/"), timeout: .seconds(2)) } catch let error as HTTPClientError where error == .alreadyShutdown { return true } catch {}
        return false
    }

    @Test func theTrustRootsSettingNamesAReadableFileOfCertificates() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let certificate = try TestCertificate.selfSigned(in: folder.path, name: "root")
        let settings = try AppConfiguration(environment: ["PAYMENT_WEBHOOK_CA_FILE": certificate.certificate]).webhooks
        #expect(try settings.extraTrustRoots.map { try $0.toDERBytes() } == [certificate.leafDER])
        #expect(try AppConfiguration(environment: [:]).webhooks.extraTrustRoots.isEmpty)
        let empty = "\(folder.path)/empty.pem"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        for path in ["\(folder.path)/missing.pem", empty, certificate.key] {
            #expect(throws: ConfigurationError.self, "\(path)") { try AppConfiguration(environment: ["PAYMENT_WEBHOOK_CA_FILE": path]) }
        }
    }
}
