import ArgumentParser
import AsyncHTTPClient
import Foundation

/// Asks the running service whether it is ready; for container HEALTHCHECKs,
/// since slim images have no curl.
struct HealthcheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Exit 0 when the local service answers /readyz with 200 (its database is reachable), 1 otherwise.")

    @Option(help: "URL to check (default: http://127.0.0.1:$PORT/readyz, PORT defaulting to 8080).")
    var url: String?

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int64 = 5

    func run() async throws {
        let target = try url.map { try CommandURL.validated($0, option: "--url") }
            ?? "http://127.0.0.1:\(try CommandURL.environmentPort())/readyz"
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: target), timeout: .seconds(timeout))
            guard response.status.code == 200 else {
                print("unhealthy: \(target) answered \(response.status.code)")
                throw ExitCode(1)
            }
            print("healthy: \(target)")
        } catch let exit as ExitCode {
            throw exit
        } catch {
            print("unhealthy: \(target): \(error)")
            throw ExitCode(1)
        }
    }
}
