import Foundation
import HTTPTypes
import NIOSSL
import Testing
@testable import PaymentStatus

#if canImport(Glibc)
import Glibc
#endif

/// The binary with a certificate: start-up checks of the files, SIGHUP
/// reloads, the healthcheck and SIGTERM over HTTP/2.
@Suite("The binary over TLS", .serialized, .timeLimit(.minutes(3)))
struct TLSBinaryTests {
    static let streamSecret = "tls-binary-stream-secret"
    static let credentials = Credentials(apiToken: "tok", streamSecret: streamSecret, webhookSecrets: [])
    static let bearer: HTTPFields = [.authorization: "Bearer tok", .contentType: "application/json"]

    static func environment(_ certificate: TestCertificate) -> [String: String] {
        [
            "PAYMENT_API_TOKEN": "tok", "PAYMENT_STREAM_SECRET": streamSecret, "LOG_LEVEL": "notice",
            "PAYMENT_TLS_CERTIFICATE": certificate.certificate, "PAYMENT_TLS_KEY": certificate.key,
        ]
    }

    static func path(_ order: String) -> String {
        "/v1/orders/\(order)/events?token=\(credentials.streamToken(forOrder: order))"
    }

    static func create(_ order: String, on connection: HTTP2Connection) async throws {
        let created = try await connection.request(.post, "/v1/orders", headers: bearer, body: #"{"id":"\#(order)","amount":5,"currency":"EUR"}"#)
        #expect(created.response.status == .created)
    }

    static func move(_ order: String, to status: String, on connection: HTTP2Connection) async throws {
        let moved = try await connection.request(.post, "/v1/orders/\(order)/transitions", headers: bearer, body: #"{"status":"\#(status)"}"#)
        #expect(moved.response.status == .ok)
    }

    @Test func aFileThatCannotServeStopsStartUpNamingIt() async throws {
        let folder = try BinaryTests.Folder()
        defer { folder.remove() }
        let good = try TestCertificate.selfSigned(in: folder.path, name: "good")
        let other = try TestCertificate.selfSigned(in: folder.path, name: "other")
        let missing = folder.path + "/missing.crt"
        let cases: [(what: String, environment: [String: String], flags: [String], named: [String])] = [
            ("certificate without key", ["PAYMENT_TLS_CERTIFICATE": good.certificate], [], ["PAYMENT_TLS_KEY", good.certificate]),
            ("key without certificate", ["PAYMENT_TLS_KEY": good.key], [], ["PAYMENT_TLS_CERTIFICATE", good.key]),
            ("flag without key", [:], ["--tls-certificate", good.certificate], ["PAYMENT_TLS_KEY", good.certificate]),
            ("missing certificate", [:], ["--tls-certificate", missing, "--tls-key", good.key], [missing, "No such file"]),
            ("key is a folder", ["PAYMENT_TLS_CERTIFICATE": good.certificate, "PAYMENT_TLS_KEY": folder.path], [], [folder.path, "cannot be read"]),
            ("key is a certificate", ["PAYMENT_TLS_CERTIFICATE": good.certificate, "PAYMENT_TLS_KEY": good.certificate], [], [good.certificate, "private key"]),
            ("key of another certificate", ["PAYMENT_TLS_CERTIFICATE": good.certificate], ["--tls-key", other.key], [other.key, good.certificate]),
        ]
        for (index, test) in cases.enumerated() {
            let directory = folder.path + "/case-\(index)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let server = try ServerProcess(
                ["serve", "--port", "0", "--migrations", TestService.migrations] + test.flags,
                environment: test.environment.merging(["PAYMENT_API_TOKEN": "tok"]) { a, _ in a }, directory: directory)
            #expect(try await server.waitForExit() != 0, "\(test.what): \(server.printed)")
            for name in test.named {
                #expect(server.printed.contains(name), "\(test.what): '\(name)' not in \(server.printed)")
            }
            // Refused before the database was opened.
            #expect(!FileManager.default.fileExists(atPath: directory + "/data/payments.sqlite"), "\(test.what)")
        }
    }

    @Test func sighupGivesNewConnectionsTheNewCertificateAndLeavesOpenOnesAlone() async throws {
        #if canImport(Glibc)
        let folder = try BinaryTests.Folder()
        defer { folder.remove() }
        let first = try TestCertificate.selfSigned(in: folder.path, name: "first")
        let second = try TestCertificate.selfSigned(in: folder.path, name: "second")
        let third = try TestCertificate.selfSigned(in: folder.path, name: "third")
        // The paths the server reads: first's files for now.
        try FileManager.default.copyItem(atPath: first.certificate, toPath: folder.path + "/live.crt")
        try FileManager.default.copyItem(atPath: first.key, toPath: folder.path + "/live.key")
        let live = try TestCertificate(certificate: folder.path + "/live.crt", key: folder.path + "/live.key")
        let server = try BinaryTests.serve(folder, Self.environment(live))
        let port = try await server.port()

        let old = try await HTTP2Connection.connect(port: port)
        #expect(try old.peerCertificates.first?.toDERBytes() == first.leafDER)
        try await Self.create("o1", on: old)
        let stream = try await old.openStream(Self.path("o1"))
        #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 1)

        // Renewed: the new pair in place, then SIGHUP.
        try second.install(at: live)
        kill(server.pid, SIGHUP)
        try await eventually(10, "the reload to be logged") { server.printed.contains("TLS certificate reloaded") }
        #expect(server.isRunning)
        let renewed = try await HTTP2Connection.connect(port: port)
        #expect(try renewed.peerCertificates.first?.toDERBytes() == second.leafDER)
        #expect(renewed.peerCertificates.first?.serialNumber.map { String(format: "%02X", $0) }.joined() == second.serial)

        // The open connection and its stream carry on, and the connection takes new streams.
        #expect(old.isActive && !stream.isClosed)
        try await Self.move("o1", to: "processing", on: renewed)
        #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 2)
        try await Self.create("o2", on: old)
        let later = try await old.openStream(Self.path("o2"))
        #expect(try LiveStreamTests.seq(try await later.nextEvent()) == 1)

        // A bad pair (third's certificate with first's key): logged, and the second stays.
        try TestCertificate(certificate: third.certificate, key: first.key).install(at: live)
        kill(server.pid, SIGHUP)
        try await eventually(10, "the failed reload to be logged") { server.printed.contains("TLS certificate not reloaded") }
        #expect(server.printed.contains(live.key))
        let afterBad = try await HTTP2Connection.connect(port: port)
        #expect(try afterBad.peerCertificates.first?.toDERBytes() == second.leafDER)
        #expect(try await afterBad.request(.get, "/healthz").response.status == .ok)

        try await Self.move("o1", to: "succeeded", on: afterBad)
        #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 3)
        #expect(try await stream.readToEnd().ended)
        for connection in [old, renewed, afterBad] { await connection.close() }
        server.terminate()
        #expect(try await server.waitForExit() == 0)
        #endif
    }

    @Test func theHealthcheckSpeaksTLSToItsOwnServer() async throws {
        let folder = try BinaryTests.Folder()
        defer { folder.remove() }
        let certificate = try TestCertificate.selfSigned(in: folder.path, name: "server")
        let server = try BinaryTests.serve(folder, Self.environment(certificate))
        let port = try await server.port()

        // The serve environment: https, and the self-signed certificate accepted on loopback.
        let check = try ServerProcess(
            ["healthcheck"], environment: ["PORT": String(port), "PAYMENT_TLS_CERTIFICATE": certificate.certificate], directory: folder.path)
        #expect(try await check.waitForExit() == 0, "\(check.printed)")
        #expect(check.printed.contains("healthy: https://127.0.0.1:\(port)/readyz"))
        let byURL = try ServerProcess(["healthcheck", "--url", "https://localhost:\(port)/readyz"], environment: [:], directory: folder.path)
        #expect(try await byURL.waitForExit() == 0, "\(byURL.printed)")
        // Plain HTTP gets no answer from the TLS port.
        let plain = try ServerProcess(["healthcheck"], environment: ["PORT": String(port)], directory: folder.path)
        #expect(try await plain.waitForExit() != 0, "\(plain.printed)")
        server.terminate()
        #expect(try await server.waitForExit() == 0)
    }

    /// Shutdown drains an HTTP/2 connection's streams as it drains HTTP/1.1
    /// ones: each ends properly (END_STREAM), at its own moment within the
    /// drain period, and the connection closes after the last.
    @Test func sigtermDrainsEveryStreamOfAnHTTP2ConnectionAndExitsCleanly() async throws {
        let folder = try BinaryTests.Folder()
        defer { folder.remove() }
        let certificate = try TestCertificate.selfSigned(in: folder.path, name: "server")
        let server = try BinaryTests.serve(folder, Self.environment(certificate).merging(["PAYMENT_DRAIN_SECONDS": "2"]) { a, _ in a })
        let port = try await server.port()
        let connection = try await HTTP2Connection.connect(port: port)
        var streams: [HTTP2Stream] = []
        for order in (1...6).map({ "s\($0)" }) {
            try await Self.create(order, on: connection)
            let stream = try await connection.openStream(Self.path(order))
            #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 1)
            streams.append(stream)
        }
        let stopped = ContinuousClock.now
        server.terminate()
        let ends = try await withThrowingTaskGroup(of: (Bool, Duration).self) { group in
            for stream in streams {
                group.addTask {
                    let rest = try await stream.readToEnd(within: 20)
                    return (rest.ended && stream.resetCode == nil, ContinuousClock.now - stopped)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(ends.allSatisfy { $0.0 }, "a stream was cut instead of ended: \(ends)")
        let times = ends.map(\.1)
        #expect(times.max()! < .seconds(6))
        #expect(times.max()! - times.min()! > .milliseconds(200), "the streams ended together: \(times)")
        #expect(try await server.waitForExit() == 0)
        try await eventually(10, "the connection to close") { !connection.isActive }
    }
}
