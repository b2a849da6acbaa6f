import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The secrets the service authenticates with. None is ever optional:
/// authentication cannot be switched off.
public struct Credentials: Sendable {
    /// The merchant back end's bearer token.
    public var apiToken: String
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
        self.apiToken = apiToken
        self.streamSecret = streamSecret
        streamKey = Self.key(streamSecret)
        self.webhookSecrets = webhookSecrets
        self.streamTokenLifetime = streamTokenLifetime
        self.legacyStreamTokensUntil = legacyStreamTokensUntil
    }

    /// Whether `presented` is the API token, in time that does not depend on
    /// where the two differ: both are hashed first, so even the length is hidden.
    func acceptsAPIToken(_ presented: Substring) -> Bool {
        constantTimeEquals(SHA256.hash(data: Array(presented.utf8)), SHA256.hash(data: Array(apiToken.utf8)))
    }

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
