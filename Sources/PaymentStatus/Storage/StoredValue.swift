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
