#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A URL of the merchant's that hears of every committed event.
public struct WebhookEndpoint: Sendable, Equatable {
    public var id: String
    public var url: String
    public var description: String?
    public var enabled: Bool
    public var createdAt: Timestamp
    /// The current signing secret, `whsec_` + base64 of the key.
    public var secret: String
    /// The secret before the last rotation, and when it stops signing.
    public var previousSecret: (value: String, expiresAt: Timestamp)?

    public init(
        id: String, url: String, description: String?, enabled: Bool = true, createdAt: Timestamp, secret: String,
        previousSecret: (value: String, expiresAt: Timestamp)? = nil
    ) {
        self.id = id
        self.url = url
        self.description = description
        self.enabled = enabled
        self.createdAt = createdAt
        self.secret = secret
        self.previousSecret = previousSecret
    }

    /// The secrets that sign a delivery made at `time`: the current one, and
    /// during the 24 h after a rotation the one before it too.
    public func signingSecrets(at time: Timestamp) -> [String] {
        Self.signingSecrets(current: secret, previous: previousSecret?.value, expiresAt: previousSecret?.expiresAt, at: time)
    }

    /// The same from stored columns, for a store that reads them beside a message.
    static func signingSecrets(current: String, previous: String?, expiresAt: Timestamp?, at time: Timestamp) -> [String] {
        guard let previous, let expiresAt, time < expiresAt else { return [current] }
        return [current, previous]
    }

    public static func == (lhs: WebhookEndpoint, rhs: WebhookEndpoint) -> Bool {
        lhs.id == rhs.id && lhs.url == rhs.url && lhs.description == rhs.description && lhs.enabled == rhs.enabled
            && lhs.createdAt == rhs.createdAt && lhs.secret == rhs.secret
            && lhs.previousSecret?.value == rhs.previousSecret?.value
            && lhs.previousSecret?.expiresAt == rhs.previousSecret?.expiresAt
    }

    /// `we_` and 24 random letters and digits.
    static func generateID() -> String { "we_" + GeneratedID.random(24) }

    /// How long the secret replaced by a rotation keeps signing.
    public static let rotationOverlap: Duration = .seconds(86_400)

    /// `whsec_` + base64 of 32 random bytes (the contract allows 24 to 64).
    public static func generateSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "whsec_" + Data(key).base64EncodedString()
    }
}

/// Where a message stands.
public enum WebhookMessageStatus: String, Sendable, CaseIterable {
    case pending, delivered, failed
}
