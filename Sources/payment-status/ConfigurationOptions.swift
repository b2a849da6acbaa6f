import ArgumentParser
import PaymentStatus

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The options `serve` and `migrate` share. Each flag overrides the
/// environment variable named in its help; secrets are read from the
/// environment only, so they never show in a process listing.
struct ConfigurationOptions: ParsableArguments {
    @Option(help: "Address to listen on (env HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (env PORT; default 8080).")
    var port: Int?

    @Option(help: "SQLite database file, or postgres://user:password@host:port/database (env PAYMENT_DB; default ./data/payments.sqlite).")
    var database: String?

    @Option(help: "Folder of .sql migration files (env PAYMENT_MIGRATIONS_DIR; default ./migrations).")
    var migrations: String?

    @Option(help: "Comma-separated origins answered with CORS (env PAYMENT_CORS_ORIGINS).")
    var corsOrigins: String?

    @Option(help: "Seconds between keep-alive comments on a stream (env PAYMENT_HEARTBEAT_SECONDS; default 15).")
    var heartbeatSeconds: String?

    @Option(help: "Seconds after which a stream is closed for its client to resume (env PAYMENT_STREAM_TIMEOUT_SECONDS; default 600).")
    var streamTimeoutSeconds: String?

    /// The environment, overridden by the flags given.
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AppConfiguration {
        var configuration = try AppConfiguration(environment: environment)
        if let host { configuration.host = host }
        if let port { configuration.port = try AppConfiguration.port(String(port), from: "--port") }
        if let database { configuration.database = try DatabaseLocation(database, from: "--database") }
        if let migrations { configuration.migrationsDirectory = migrations }
        if let corsOrigins { configuration.corsOrigins = AppConfiguration.list(corsOrigins) }
        if let heartbeatSeconds {
            configuration.heartbeatInterval = try AppConfiguration.seconds(heartbeatSeconds, from: "--heartbeat-seconds")
        }
        if let streamTimeoutSeconds {
            configuration.streamTimeout = try AppConfiguration.seconds(streamTimeoutSeconds, from: "--stream-timeout-seconds")
        }
        return configuration
    }
}
