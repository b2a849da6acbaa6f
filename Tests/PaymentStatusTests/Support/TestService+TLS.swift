import Foundation
import HummingbirdTesting
@testable import PaymentStatus

extension TestService {
    /// A service that serves HTTPS with a throwaway self-signed certificate.
    static func https(
        heartbeat: Duration = .seconds(15), streamTimeout: Duration = .seconds(600),
        configure: (inout AppConfiguration) -> Void = { _ in }
    ) throws -> (service: TestService, certificate: TestCertificate) {
        var service = try TestService(heartbeat: heartbeat, streamTimeout: streamTimeout, configure: configure)
        let certificate = try TestCertificate.selfSigned(in: service.folder, name: "server")
        service.configuration.tlsCertificate = certificate.certificate
        service.configuration.tlsKey = certificate.key
        return (service, certificate)
    }

    /// Opens the services and runs `test` against the real TLS server on a
    /// loopback port; the client is AsyncHTTPClient, which speaks HTTP/2 once
    /// ALPN offers it.
    func withHTTPSServer<T: Sendable>(_ test: @escaping @Sendable (HTTPSClient, AppServices) async throws -> T) async throws -> T {
        try await withDatabase { configuration in
            let services = try await AppServices.open(configuration, logger: Self.logger)
            return try await buildApplication(services, logger: Self.logger).test(.ahc(.https)) { client in
                try await test(HTTPSClient(client: client, port: client.port!), services)
            }
        }
    }
}

/// The AsyncHTTPClient test client (HTTP/2 over TLS) plus the port, for
/// connections of a test's own.
struct HTTPSClient: Sendable {
    let client: any TestClientProtocol
    let port: Int

    /// A new HTTP/2 connection of its own.
    func connect(initialWindowSize: Int = 65535) async throws -> HTTP2Connection {
        try await HTTP2Connection.connect(port: port, initialWindowSize: initialWindowSize)
    }

    /// `curl` with `arguments` against `path`; returns what it printed and its exit status.
    func curl(_ arguments: [String], _ path: String, scheme: String = "https") async throws -> (output: String, status: Int32) {
        let arguments = ["--silent", "--show-error", "--max-time", "10"] + arguments + ["\(scheme)://127.0.0.1:\(port)\(path)"]
        return try await runTool("/usr/bin/curl", arguments)
    }
}

/// Runs a tool to its end on a thread of its own (not one of the few the
/// server's tasks run on) and returns what it printed and its exit status.
func runTool(_ tool: String, _ arguments: [String]) async throws -> (output: String, status: Int32) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            do {
                try process.run()
            } catch {
                return continuation.resume(throwing: error)
            }
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            continuation.resume(returning: (String(decoding: data, as: UTF8.self), process.terminationStatus))
        }
    }
}
