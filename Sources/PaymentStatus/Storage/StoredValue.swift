#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How domain values are written into a column and read back, the same for
/// every store: statuses and sources as their contract names, metadata as a
/// JSON object with sorted keys, times as integer milliseconds.
enum StoredValue {
    static func status(_ text: String) throws -> PaymentStatus {
        guard let status = PaymentStatus(rawValue: text) else { throw StoreError.corruptRow("unknown status \(text)") }
        return status
    }

    static func source(_ text: String) throws -> ChangeSource {
        guard let source = ChangeSource(rawValue: text) else { throw StoreError.corruptRow("unknown source \(text)") }
        return source
    }

    static func encodeMetadata(_ metadata: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(metadata), as: UTF8.self)
    }

    static func decodeMetadata(_ text: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }
}

extension StoredValue {
    static func messageStatus(_ text: String) throws -> WebhookMessageStatus {
        guard let status = WebhookMessageStatus(rawValue: text) else { throw StoreError.corruptRow("unknown message status \(text)") }
        return status
    }

    /// A verdict as the message's columns: its status, when it is next tried
    /// (pending only) and when it finished (delivered or failed), in milliseconds.
    static func outcome(_ verdict: MessageVerdict, at time: Timestamp) -> (status: String, next: Int64?, finished: Int64?) {
        switch verdict {
        case .delivered: ("delivered", nil, time.millisecondsSince1970)
        case .failed: ("failed", nil, time.millisecondsSince1970)
        case .retry(let at): ("pending", at.millisecondsSince1970, nil)
        }
    }
}
