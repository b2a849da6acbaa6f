import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOSSL

/// Asks the running service whether it is ready; for container HEALTHCHECKs,
/// since slim images have no curl.
struct HealthcheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Exit 0 when the local service answers /readyz with 200 (its database is reachable), 1 otherwise.",
        discussion: """
            With PAYMENT_TLS_CERTIFICATE set (the same environment as serve), the default URL is https. \
            On a loopback address the certificate is not verified: this process asks its own host, \
            where no one else can answer, and the certificate is often made for a public name or self-signed. \
            Any other host is verified as usual.
            """)

    @Option(help: "URL to check (default: http://127.0.0.1:$PORT/readyz, https when PAYMENT_TLS_CERTIFICATE is set; PORT defaults to 8080).")
    var url: String?

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int64 = 5

    func run() async throws {
        // The service speaks HTTPS only once it has a certificate.
        let tls = !(ProcessInfo.processInfo.environment["PAYMENT_TLS_CERTIFICATE"] ?? "").allSatisfy(\.isWhitespace)
        let target = try url.map { try CommandURL.validated($0, option: "--url") }
            ?? "\(tls ? "https" : "http")://127.0.0.1:\(try CommandURL.environmentPort())/readyz"
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.clientConfiguration(for: target))
        let outcome: Result<Void, ExitCode>
        do {
            let response = try await client.execute(HTTPClientRequest(url: target), timeout: .seconds(timeout))
            if response.status.code == 200 {
                print("healthy: \(target)")
                outcome = .success(())
            } else {
                print("unhealthy: \(target) answered \(response.status.code)")
                outcome = .failure(ExitCode(1))
            }
        } catch {
            print("unhealthy: \(target): \(error)")
            outcome = .failure(ExitCode(1))
        }
        try? await client.shutdown()
        try outcome.get()
    }

    /// Certificate checks off for a loopback host only.
    static func clientConfiguration(for target: String) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        if let host = URL(string: target)?.host, isLoopback(host) {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            configuration.tlsConfiguration = tls
        }
        return configuration
    }

    static func isLoopback(_ host: String) -> Bool {
        let host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        // 127.0.0.0/8 as a numeric address only: "127.example.com" is anyone's.
        let octets = host.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
        let loopbackV4 = octets.count == 4 && !octets.contains(nil) && octets[0] == 127
        return host == "localhost" || host == "::1" || loopbackV4
    }
}
