import NIOSSL

/// How webhooks to the merchant are sent (the `PAYMENT_WEBHOOK_*` settings).
public struct WebhookSettings: Sendable {
    public var policy = WebhookURLPolicy()
    /// Authorities trusted for `https` receivers besides the system's
    /// (`PAYMENT_WEBHOOK_CA_FILE`): a merchant on a private CA, and tests.
    public var extraTrustRoots: [NIOSSLCertificate] = []
    /// Whether this instance sends the outbox. Off, it still writes every
    /// message with its event and sends none: on PostgreSQL the instances
    /// that deliver take them; on SQLite they wait for a start with it on.
    public var delivers = true
    public var schedule = RetrySchedule.standard
    /// Attempts in flight at once, over every endpoint.
    public var maxInFlight = 64
    /// How long a claimed message is this worker's; longer than an attempt
    /// (10 s), so a live worker never loses one it is sending.
    public var lease: Duration = .seconds(30)
    /// How often the outbox is looked at when no commit rang (other
    /// instances' commits, retries falling due on another instance).
    public var pollInterval: Duration = .seconds(1)
    /// At shutdown, how long attempts in flight may take to end before they
    /// are cut (and sent again later); the service's drain period.
    public var shutdownGrace: Duration = .seconds(5)
    /// Delivered messages and their attempts are deleted after this.
    public var retention: Duration = .seconds(30 * 86_400)
    public var retentionInterval: Duration = .seconds(3600)
    public var retentionBatchSize = 500

    public init() {}

    init(environment value: (String) -> String?) throws(ConfigurationError) {
        if let text = value("PAYMENT_WEBHOOK_DELIVERY") {
            switch text.lowercased() {
            case "on": delivers = true
            case "off": delivers = false
            default:
                throw ConfigurationError(setting: "PAYMENT_WEBHOOK_DELIVERY", message: "must be 'on' or 'off', got '\(text)'")
            }
        }
        policy.allowHTTP = Self.flag(value("PAYMENT_WEBHOOK_ALLOW_HTTP"))
        policy.allowPrivateNetworks = Self.flag(value("PAYMENT_WEBHOOK_ALLOW_PRIVATE_NETWORKS"))
        if let path = value("PAYMENT_WEBHOOK_CA_FILE"), !path.isEmpty {
            do { extraTrustRoots = try NIOSSLCertificate.fromPEMFile(path) } catch {
                throw ConfigurationError(setting: "PAYMENT_WEBHOOK_CA_FILE", message: "must name a readable PEM file of certificates (\(path): \(error))")
            }
            guard !extraTrustRoots.isEmpty else {
                throw ConfigurationError(setting: "PAYMENT_WEBHOOK_CA_FILE", message: "holds no certificate (\(path))")
            }
        }
        if let text = value("PAYMENT_WEBHOOK_RETRY_SCHEDULE") {
            schedule = try RetrySchedule(parsing: text, from: "PAYMENT_WEBHOOK_RETRY_SCHEDULE")
        }
        if let text = value("PAYMENT_WEBHOOK_MAX_IN_FLIGHT") {
            guard let count = Int(text), (1...10_000).contains(count) else {
                throw ConfigurationError(setting: "PAYMENT_WEBHOOK_MAX_IN_FLIGHT", message: "must be a whole number from 1 to 10000, got '\(text)'")
            }
            maxInFlight = count
        }
        if let text = value("PAYMENT_WEBHOOK_LEASE_SECONDS") {
            lease = try AppConfiguration.seconds(text, from: "PAYMENT_WEBHOOK_LEASE_SECONDS")
            guard lease > WebhookSender.timeout else {
                throw ConfigurationError(
                    setting: "PAYMENT_WEBHOOK_LEASE_SECONDS", message: "must be longer than an attempt's 10 s timeout, got '\(text)'")
            }
        }
        if let text = value("PAYMENT_WEBHOOK_POLL_SECONDS") {
            pollInterval = try AppConfiguration.seconds(text, from: "PAYMENT_WEBHOOK_POLL_SECONDS")
        }
        if let text = value("PAYMENT_WEBHOOK_RETENTION_DAYS") {
            retention = try AppConfiguration.days(text, from: "PAYMENT_WEBHOOK_RETENTION_DAYS")
        }
        if let text = value("PAYMENT_WEBHOOK_RETENTION_INTERVAL_SECONDS") {
            retentionInterval = try AppConfiguration.seconds(text, from: "PAYMENT_WEBHOOK_RETENTION_INTERVAL_SECONDS")
        }
    }

    static func flag(_ text: String?) -> Bool {
        ["1", "true", "yes", "on"].contains(text?.lowercased() ?? "")
    }
}
