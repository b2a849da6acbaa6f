/// Everything `serve` can be told, with the contract's defaults. Each field
/// has an environment variable; command-line flags override the environment.
public struct AppConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// A SQLite file, or a `postgres://` URL for a store shared by several instances.
    public var database: DatabaseLocation = .sqlite(path: "./data/payments.sqlite")
    /// SQLite's `.sql` files; PostgreSQL's are in its `postgres` subfolder.
    public var migrationsDirectory = "./migrations"
    /// Unset secrets are generated on first start and kept in the database.
    /// Several API tokens during a rotation: the first is the current one,
    /// and a request bearing any of them is accepted.
    public var apiTokens: [String] = []
    /// The current API token (the first of `apiTokens`); setting it makes it the only one.
    public var apiToken: String? {
        get { apiTokens.first }
        set { apiTokens = newValue.map { [$0] } ?? [] }
    }
    public var streamSecret: String?
    /// Several during a rotation: a signature made with any of them is accepted.
    public var webhookSecrets: [String] = []
    /// How far a webhook signature's timestamp may be from now, either way.
    public var webhookTolerance: Duration = .seconds(300)
    public var corsOrigins: [String] = []
    public var heartbeatInterval: Duration = .seconds(15)
    public var streamTimeout: Duration = .seconds(600)
    /// The least a stream's `retry:` line tells browsers to wait before
    /// reconnecting; each stream gets a random value from here to twice it.
    public var retryMilliseconds = 3000
    /// On shutdown, open streams end at random moments over this period, so
    /// that their clients do not all reconnect elsewhere at once.
    public var drainPeriod: Duration = .seconds(5)
    /// How long a stream token is good for after it was issued.
    public var streamTokenLifetime: Duration = .seconds(86_400)
    /// Streams open at once before new ones are answered 503 (a soft cap: a
    /// burst of concurrent opens may pass it by a few). Below the 20,000
    /// open files a process may have here, with room for other connections.
    public var maxStreams = 15_000
    /// A connection that has not sent a complete request head within this time
    /// (slow or stalled clients), or sits idle between requests, is closed.
    public var idleTimeout: Duration = .seconds(30)
    /// A request body must have arrived whole within this time of its head;
    /// one still trickling in then is answered 408 and its connection closed.
    public var bodyTimeout: Duration = .seconds(30)
    /// Serves the unauthenticated endpoints the demo page at `/` drives. Never in production.
    public var demo = false
    /// PEM files: with both, the port serves HTTPS only (HTTP/2 and HTTP/1.1 by ALPN).
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// Orders that reached a final status longer ago than this are deleted
    /// with their events; nil (the default) keeps every order for good.
    public var retention: Duration?
    /// How often the retention service looks for orders past the limit.
    public var retentionInterval: Duration = .seconds(3600)
    /// Orders deleted per transaction, so that the writer is never held for long.
    public var retentionBatchSize = 500
    /// Webhooks to the merchant: URL rules, retries, delivery and retention.
    public var webhooks = WebhookSettings()

    public init() {}

    /// Reads the environment variables the contract names; a variable that is
    /// set but invalid is an error, never silently replaced by a default.
    public init(environment: [String: String]) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmed, !text.isEmpty else { return nil }
            return text
        }
        if let host = value("HOST") { self.host = host }
        if let port = value("PORT") { self.port = try Self.port(port, from: "PORT") }
        if let text = value("PAYMENT_DB") { database = try DatabaseLocation(text, from: "PAYMENT_DB") }
        if let path = value("PAYMENT_MIGRATIONS_DIR") { migrationsDirectory = path }
        apiTokens = Self.list(value("PAYMENT_API_TOKEN"))
        streamSecret = value("PAYMENT_STREAM_SECRET")
        webhookSecrets = Self.list(value("PAYMENT_WEBHOOK_SECRET"))
        corsOrigins = Self.list(value("PAYMENT_CORS_ORIGINS"))
        if let text = value("PAYMENT_WEBHOOK_TOLERANCE_SECONDS") {
            webhookTolerance = try Self.seconds(text, from: "PAYMENT_WEBHOOK_TOLERANCE_SECONDS")
        }
        if let text = value("PAYMENT_MAX_STREAMS") {
            guard let count = Int(text), count > 0 else {
                throw ConfigurationError(setting: "PAYMENT_MAX_STREAMS", message: "must be a whole number greater than 0, got '\(text)'")
            }
            maxStreams = count
        }
        if let text = value("PAYMENT_RETRY_MS") {
            guard let milliseconds = Int(text), (1...3_600_000).contains(milliseconds) else {
                throw ConfigurationError(setting: "PAYMENT_RETRY_MS", message: "must be a whole number of milliseconds from 1 to 3600000, got '\(text)'")
            }
            retryMilliseconds = milliseconds
        }
        if let text = value("PAYMENT_DRAIN_SECONDS") {
            drainPeriod = try Self.seconds(text, from: "PAYMENT_DRAIN_SECONDS")
        }
        if let text = value("PAYMENT_STREAM_TOKEN_TTL_SECONDS") {
            guard let seconds = Int64(text), (1...31_536_000).contains(seconds) else {
                throw ConfigurationError(
                    setting: "PAYMENT_STREAM_TOKEN_TTL_SECONDS", message: "must be a whole number of seconds from 1 to 31536000, got '\(text)'")
            }
            streamTokenLifetime = .seconds(seconds)
        }
        if let text = value("PAYMENT_IDLE_TIMEOUT_SECONDS") {
            idleTimeout = try Self.seconds(text, from: "PAYMENT_IDLE_TIMEOUT_SECONDS")
        }
        if let text = value("PAYMENT_BODY_TIMEOUT_SECONDS") {
            bodyTimeout = try Self.seconds(text, from: "PAYMENT_BODY_TIMEOUT_SECONDS")
        }
        tlsCertificate = value("PAYMENT_TLS_CERTIFICATE")
        tlsKey = value("PAYMENT_TLS_KEY")
        if let text = value("PAYMENT_RETENTION_DAYS") { retention = try Self.days(text, from: "PAYMENT_RETENTION_DAYS") }
        if let text = value("PAYMENT_RETENTION_INTERVAL_SECONDS") {
            retentionInterval = try Self.seconds(text, from: "PAYMENT_RETENTION_INTERVAL_SECONDS")
        }
        webhooks = try WebhookSettings(environment: value)
        if let text = value("PAYMENT_DEMO") { demo = ["1", "true", "yes", "on"].contains(text.lowercased()) }
        if let text = value("PAYMENT_HEARTBEAT_SECONDS") {
            heartbeatInterval = try Self.seconds(text, from: "PAYMENT_HEARTBEAT_SECONDS")
        }
        if let text = value("PAYMENT_STREAM_TIMEOUT_SECONDS") {
            streamTimeout = try Self.seconds(text, from: "PAYMENT_STREAM_TIMEOUT_SECONDS")
        }
    }

    /// The certificate and key files, nil when TLS is off; one without the other is an error.
    public func tlsFiles() throws(ConfigurationError) -> TLSFiles? {
        switch (tlsCertificate, tlsKey) {
        case (nil, nil):
            return nil
        case (let certificate?, let key?):
            return TLSFiles(certificate: certificate, key: key)
        case (let certificate?, nil):
            throw ConfigurationError(
                setting: TLSFiles.keySetting, message: "is not set: the certificate '\(certificate)' needs its private key")
        case (nil, let key?):
            throw ConfigurationError(
                setting: TLSFiles.certificateSetting, message: "is not set: the private key '\(key)' needs its certificate")
        }
    }

    public static func port(_ text: String, from source: String) throws(ConfigurationError) -> Int {
        guard let port = Int(text), (0...65535).contains(port) else {
            throw ConfigurationError(setting: source, message: "must be a port number (0-65535), got '\(text)'")
        }
        return port
    }

    /// Seconds, fractions allowed (tests use short intervals), more than zero.
    public static func seconds(_ text: String, from source: String) throws(ConfigurationError) -> Duration {
        guard let seconds = Double(text), seconds > 0, seconds <= 86_400 * 7 else {
            throw ConfigurationError(setting: source, message: "must be a number of seconds greater than 0, got '\(text)'")
        }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// A retention: whole days, from 1 to 36500.
    public static func days(_ text: String, from source: String) throws(ConfigurationError) -> Duration {
        guard let days = Int64(text), (1...36_500).contains(days) else {
            throw ConfigurationError(setting: source, message: "must be a whole number of days from 1 to 36500, got '\(text)'")
        }
        return .seconds(days * 86_400)
    }

    /// A comma-separated list, blanks dropped.
    public static func list(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty }
    }
}

/// A setting that cannot be used; the message names it.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var setting: String
    public var message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "\(setting) \(message)" }
}
