import ArgumentParser
import Hummingbird
import Logging
import PaymentStatus

import Foundation

/// Runs the HTTP service, applying pending migrations first.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Apply pending migrations, then serve the HTTP API.")

    @OptionGroup var options: ConfigurationOptions

    @Flag(help: "Serve the demo checkout page's unauthenticated endpoints (env PAYMENT_DEMO=1). Never in production.")
    var demo = false

    @Option(help: "PEM certificate (chain) file: with --tls-key the port serves HTTPS only, HTTP/2 and HTTP/1.1 (env PAYMENT_TLS_CERTIFICATE). SIGHUP re-reads both files.")
    var tlsCertificate: String?

    @Option(help: "PEM private key file of --tls-certificate (env PAYMENT_TLS_KEY).")
    var tlsKey: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env LOG_LEVEL; default info).")
    var logLevel: Logger.Level?

    @Option(help: "Log format: text or json, one object per line (env LOG_FORMAT; default text).")
    var logFormat: LogFormat?

    enum LogFormat: String, ExpressibleByArgument {
        case text, json
    }

    func run() async throws {
        var configuration = try options.resolve()
        if demo { configuration.demo = true }
        if let tlsCertificate { configuration.tlsCertificate = tlsCertificate }
        if let tlsKey { configuration.tlsKey = tlsKey }
        let format = try logFormat ?? Environment().get("LOG_FORMAT").map {
            guard let format = LogFormat(rawValue: $0) else {
                throw ConfigurationError(setting: "LOG_FORMAT", message: "must be text or json, got '\($0)'")
            }
            return format
        } ?? .text
        if format == .json { LoggingSystem.bootstrap(JSONLogHandler.init) }
        var logger = Logger(label: "payment-status")
        logger.logLevel = logLevel ?? Environment().get("LOG_LEVEL").flatMap(Logger.Level.init(rawValue:)) ?? .info
        let services = try await AppServices.open(configuration, logger: logger) { token in
            // Written straight to the file descriptor, so it shows even when
            // stdout is a pipe or a file (docker logs, systemd).
            FileHandle.standardOutput.write(Data("""
                No PAYMENT_API_TOKEN was set, so one was generated and stored in \(configuration.database).
                It is shown this once; merchant requests send it as 'Authorization: Bearer <token>':

                    \(token)

                \n
                """.utf8))
        }
        let app = try buildApplication(services, logger: logger)
        try await app.runService()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
