/// The one rule for request bodies, checked before any decoding: strict
/// RFC 8259 JSON, with no key twice in an object and integers only.
///
/// Why: parsers disagree on the edges (a repeated key keeps the first value
/// in one and the last in another; some take trailing commas; a number such
/// as `100.000000000000000000001` rounds to an integer), and a payment
/// request must mean one thing to every system that reads it. So anything
/// two readers could take differently is refused instead of guessed.
enum StrictJSON {
    enum Violation: Error, Equatable {
        /// Not strict JSON: the detail says where and why (answered 400).
        case malformed(String)
        /// A number with a fraction or an exponent at this key path: every
        /// number of the contract is an integer (answered 422 naming the field).
        case notAnInteger(path: String)
    }

    /// Deeper documents are refused, so that nesting cannot exhaust the stack.
    static let maximumDepth = 32

    static func validate(_ bytes: some Collection<UInt8>) throws(Violation) {
        var parser = Parser(bytes: Array(bytes))
        parser.skipWhitespace()
        try parser.value(depth: 0, path: "")
        parser.skipWhitespace()
        guard parser.index == parser.bytes.count else { throw .malformed("unexpected data after the JSON document") }
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        mutating func expect(_ literal: StaticString) throws(Violation) {
            for byte in UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount) {
                guard current == byte else { throw .malformed("invalid literal at byte \(index)") }
                index += 1
            }
        }

        mutating func value(depth: Int, path: String) throws(Violation) {
            guard depth < StrictJSON.maximumDepth else { throw .malformed("the document is nested too deeply") }
            guard let byte = current else { throw .malformed("expected a value at byte \(index)") }
            switch byte {
            case UInt8(ascii: "{"): try object(depth: depth, path: path)
            case UInt8(ascii: "["): try array(depth: depth, path: path)
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "t"): try expect("true")
            case UInt8(ascii: "f"): try expect("false")
            case UInt8(ascii: "n"): try expect("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number(path: path)
            default: throw .malformed("expected a value at byte \(index)")
            }
        }

        mutating func object(depth: Int, path: String) throws(Violation) {
            index += 1
            skipWhitespace()
            if current == UInt8(ascii: "}") { index += 1; return }
            var keys = Set<[UInt8]>()
            while true {
                guard current == UInt8(ascii: "\"") else { throw .malformed("expected a key at byte \(index)") }
                let key = try string()
                guard keys.insert(key).inserted else {
                    throw .malformed("the key '\(String(decoding: key.prefix(64), as: UTF8.self))' appears twice in one object")
                }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw .malformed("expected ':' at byte \(index)") }
                index += 1
                skipWhitespace()
                let name = String(decoding: key.prefix(64), as: UTF8.self)
                try value(depth: depth + 1, path: path.isEmpty ? name : path + "." + name)
                skipWhitespace()
                if current == UInt8(ascii: ",") {
                    index += 1
                    skipWhitespace()
                    continue  // a key must follow: a trailing comma is refused above
                }
                guard current == UInt8(ascii: "}") else { throw .malformed("expected ',' or '}' at byte \(index)") }
                index += 1
                return
            }
        }

        mutating func array(depth: Int, path: String) throws(Violation) {
            index += 1
            skipWhitespace()
            if current == UInt8(ascii: "]") { index += 1; return }
            var position = 0
            while true {
                try value(depth: depth + 1, path: path + "[\(position)]")
                position += 1
                skipWhitespace()
                if current == UInt8(ascii: ",") {
                    index += 1
                    skipWhitespace()
                    continue
                }
                guard current == UInt8(ascii: "]") else { throw .malformed("expected ',' or ']' at byte \(index)") }
                index += 1
                return
            }
        }

        /// A string's value as UTF-8, escapes resolved, so that `"a"` and
        /// `"\u0061"` are the same key (surrogate pairs are kept as written).
        mutating func string() throws(Violation) -> [UInt8] {
            let start = index
            index += 1
            var raw: [UInt8] = []
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return raw
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let escaped = current else { break }
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                        raw.append(escaped)
                        index += 1
                    case UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        raw += [UInt8(ascii: "\\"), escaped]
                        index += 1
                    case UInt8(ascii: "u"):
                        guard index + 4 < bytes.count, bytes[(index + 1)...(index + 4)].allSatisfy(\.isHexDigit),
                            let code = UInt32(String(decoding: bytes[(index + 1)...(index + 4)], as: UTF8.self), radix: 16)
                        else {
                            throw .malformed("invalid \\u escape at byte \(index)")
                        }
                        if let scalar = Unicode.Scalar(code) {
                            raw += Array(String(Character(scalar)).utf8)
                        } else {
                            raw += bytes[(index - 1)...(index + 4)]
                        }
                        index += 5
                    default:
                        throw .malformed("invalid escape at byte \(index)")
                    }
                case 0x00..<0x20:
                    throw .malformed("a control character inside a string at byte \(index)")
                default:
                    raw.append(byte)
                    index += 1
                }
            }
            throw .malformed("a string that starts at byte \(start) never ends")
        }

        mutating func number(path: String) throws(Violation) {
            if current == UInt8(ascii: "-") { index += 1 }
            guard let first = current, first.isDigit else { throw .malformed("invalid number at byte \(index)") }
            index += 1
            if first != UInt8(ascii: "0") {
                while let byte = current, byte.isDigit { index += 1 }
            }
            if let byte = current, byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                // Well-formed or not, a fraction or exponent is never an integer of the contract.
                throw .notAnInteger(path: path)
            }
            if let byte = current, byte.isDigit { throw .malformed("a number with a leading zero at byte \(index)") }
        }
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    fileprivate var isHexDigit: Bool {
        isDigit || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f")) || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
