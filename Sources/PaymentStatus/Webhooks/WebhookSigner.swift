import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`,
/// the key being the bytes the base64 after `whsec_` decodes to. Several
/// secrets sign at once during a rotation, space-separated.
enum WebhookSigner {
    static func signatureHeader(id: String, timestamp: Int64, body: some Collection<UInt8>, secrets: [String]) -> String {
        var payload = Array("\(id).\(timestamp).".utf8)
        payload.append(contentsOf: body)
        return secrets.compactMap { secret -> String? in
            guard let key = key(of: secret) else { return nil }
            let mac = HMAC<SHA256>.authenticationCode(for: payload, using: SymmetricKey(data: key))
            return "v1," + Data(mac).base64EncodedString()
        }.joined(separator: " ")
    }

    /// The key bytes of a `whsec_` secret; nil for one of another form
    /// (only a hand edit of the database makes one).
    static func key(of secret: String) -> [UInt8]? {
        guard secret.hasPrefix("whsec_"), let data = Data(base64Encoded: String(secret.dropFirst(6))) else { return nil }
        return Array(data)
    }
}
