/// The identifiers the service makes up: order, endpoint and message ids,
/// instance names. Letters and digits, from the system's secure generator.
enum GeneratedID {
    /// In ASCII order, so that ids of the same length sort as their values.
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// `count` random letters and digits (5.95 bits each).
    static func random(_ count: Int) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        var generator = SystemRandomNumberGenerator()
        // Eight characters per draw, not one: each draw is a system call.
        // Bytes from 248 up are dropped so that every character is as likely.
        while bytes.count < count {
            var word = generator.next()
            for _ in 0..<8 where bytes.count < count {
                let byte = UInt8(truncatingIfNeeded: word)
                word >>= 8
                if byte < 248 { bytes.append(alphabet[Int(byte % 62)]) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The time in milliseconds as 8 characters that sort as the time does
    /// (good until the year 8,900), then `randomCount` random ones. Keys made
    /// this way are inserted at the end of their index, not all over it, so
    /// a commit of many rewrites a few pages rather than one per row.
    static func timeOrdered(at time: Timestamp, randomCount: Int) -> String {
        var value = UInt64(max(0, time.millisecondsSince1970))
        var prefix = [UInt8](repeating: alphabet[0], count: 8)
        for index in stride(from: 7, through: 0, by: -1) {
            prefix[index] = alphabet[Int(value % 62)]
            value /= 62
        }
        return String(decoding: prefix, as: UTF8.self) + random(randomCount)
    }
}
