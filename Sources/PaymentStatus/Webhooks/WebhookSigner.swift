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
        // The MAC is fed the parts as they are: the body is not copied behind a prefix.
        let prefix = Array("\(id).\(timestamp).".utf8)
        return secrets.compactMap { secret -> String? in
            guard let key = key(of: secret) else { return nil }
            var mac = HMAC<SHA256>(key: SymmetricKey(data: key))
            mac.update(data: prefix)
            body.withContiguousStorageIfAvailable { mac.update(data: UnsafeRawBufferPointer($0)) } ?? mac.update(data: Array(body))
            return "v1," + Data(mac.finalize()).base64EncodedString()
        }.joined(separator: " ")
    }

    /// The key bytes of a `whsec_` secret; nil for one of another form
    /// (only a hand edit of the database makes one).
    static func key(of secret: String) -> [UInt8]? {
        guard secret.hasPrefix("whsec_"), let data = Data(base64Encoded: String(secret.dropFirst(6))) else { return nil }
        return Array(data)
    }
}
