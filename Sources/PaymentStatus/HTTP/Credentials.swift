import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The secrets the service authenticates with. None is ever optional:
/// authentication cannot be switched off.
public struct Credentials: Sendable {
    /// The merchant back end's bearer tokens: the first is the current one;
    /// the others are still accepted during a rotation. Never empty.
    public var apiTokens: [String] {
        didSet { apiTokenDigests = apiTokens.map(Self.digest) }
    }
    /// The current bearer token (the first of `apiTokens`).
    public var apiToken: String { apiTokens[0] }
    /// The key that signs per-order stream tokens.
    public var streamSecret: String {
        didSet { streamKey = Self.key(streamSecret) }
    }
    /// The provider's webhook signing secrets; more than one during a rotation.
    public var webhookSecrets: [String]
    /// How long a stream token is good for after it was issued.
    public var streamTokenLifetime: Duration
    /// Until when a stream token of the form issued before tokens carried
    /// their expiry is still accepted (nil: never); see `StreamToken`.
    public var legacyStreamTokensUntil: Timestamp?

    public init(
        apiToken: String, streamSecret: String, webhookSecrets: [String],
        streamTokenLifetime: Duration = .seconds(86_400), legacyStreamTokensUntil: Timestamp? = nil
    ) {
        self.init(
            apiTokens: [apiToken], streamSecret: streamSecret, webhookSecrets: webhookSecrets,
            streamTokenLifetime: streamTokenLifetime, legacyStreamTokensUntil: legacyStreamTokensUntil)
    }

    /// `apiTokens` must not be empty: the first is the current token.
    public init(
        apiTokens: [String], streamSecret: String, webhookSecrets: [String],
        streamTokenLifetime: Duration = .seconds(86_400), legacyStreamTokensUntil: Timestamp? = nil
    ) {
        precondition(!apiTokens.isEmpty, "authentication cannot be switched off: at least one API token")
        self.apiTokens = apiTokens
        apiTokenDigests = apiTokens.map(Self.digest)
        self.streamSecret = streamSecret
        streamKey = Self.key(streamSecret)
        self.webhookSecrets = webhookSecrets
        self.streamTokenLifetime = streamTokenLifetime
        self.legacyStreamTokensUntil = legacyStreamTokensUntil
    }

    /// Whether `presented` is one of the API tokens, in time that depends
    /// neither on where they differ nor on which one matched: every token is
    /// compared (digests, so even the lengths are hidden), none skipped.
    func acceptsAPIToken(_ presented: Substring) -> Bool {
        let digest = Self.digest(presented)
        var matches = 0
        // No early return: the tokens after a match are compared too.
        for token in apiTokenDigests { matches += constantTimeEquals(digest, token) ? 1 : 0 }
        return matches > 0
    }

    /// The tokens' SHA-256, made once rather than at every request.
    private var apiTokenDigests: [[UInt8]]

    private static func digest(_ text: some StringProtocol) -> [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    /// Made once: every order in a response carries a stream token.
    private(set) var streamKey: SymmetricKey

    private static func key(_ secret: String) -> SymmetricKey { SymmetricKey(data: Array(secret.utf8)) }

    /// A new random secret: 256 bits from the system's secure generator, base64url.
    public static func generateSecret() -> String {
        let key = SymmetricKey(size: .bits256)
        return key.withUnsafeBytes { Base64URL.encode(Array($0)) }
    }
}

/// Compares two byte sequences without stopping at the first difference.
func constantTimeEquals(_ lhs: some Sequence<UInt8>, _ rhs: some Sequence<UInt8>) -> Bool {
    let a = Array(lhs)
    let b = Array(rhs)
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in a.indices { difference |= a[i] ^ b[i] }
    return difference == 0
}

/// RFC 4648 §5 base64url without padding: safe in URLs and query strings.
enum Base64URL {
    /// Encoded here rather than through Foundation's base64 and two string
    /// replacements: every order in a response carries a stream token.
    static func encode(_ bytes: [UInt8]) -> String {
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        let length = (bytes.count * 4 + 2) / 3
        return String(unsafeUninitializedCapacity: length) { out in
            alphabet.withUTF8Buffer { table in
                var written = 0
                var index = 0
                while index < bytes.count {
                    let chunk = min(3, bytes.count - index)
                    var word = UInt32(bytes[index]) << 16
                    if chunk > 1 { word |= UInt32(bytes[index + 1]) << 8 }
                    if chunk > 2 { word |= UInt32(bytes[index + 2]) }
                    for position in 0...chunk {
                        out[written] = table[Int((word >> (18 - 6 * UInt32(position))) & 0x3F)]
                        written += 1
                    }
                    index += 3
                }
                return written
            }
        }
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        guard text.utf8.count <= 256, !text.contains(where: { $0 == "+" || $0 == "/" || $0 == "=" }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64.append("=") }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
