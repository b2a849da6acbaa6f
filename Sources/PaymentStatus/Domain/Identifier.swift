/// Rules for the identifiers clients choose: order ids and event ids.
public enum Identifier {
    /// Order ids appear in URLs and logs, so they are kept to a URL-safe alphabet.
    public static func validateOrderID(_ id: String) throws(InputError) {
        guard (1...64).contains(id.utf8.count), id.utf8.allSatisfy(isIDByte) else {
            throw InputError(field: "id", message: "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")
        }
    }

    /// Event ids come from providers with their own formats, so any printable
    /// text is accepted, within a bound that keeps the index small.
    public static func validateEventID(_ id: String) throws(InputError) {
        guard (1...200).contains(id.utf8.count), !id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw InputError(field: "event_id", message: "must be 1 to 200 printable characters")
        }
    }

    /// A reason is free text for people: line breaks and tabs are fine, other
    /// control characters (NUL above all) are refused so that what is stored
    /// is exactly what was acknowledged. Bounded so that one event stays small.
    public static func validateReason(_ reason: String) throws(InputError) {
        let allowed: Set<Unicode.Scalar> = ["\n", "\r", "\t"]
        guard reason.utf8.count <= 1000,
            !reason.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && !allowed.contains($0) })
        else {
            throw InputError(field: "reason", message: "must be at most 1000 bytes of text without control characters")
        }
    }

    private static func isIDByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}

/// A field of a request that breaks the contract's input rules.
public struct InputError: Error, Sendable, Equatable {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field) \(message)" }
}
