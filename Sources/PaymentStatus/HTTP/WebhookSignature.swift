import Crypto

/// The provider's `Payment-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`
/// header: HMAC-SHA256 under the webhook secret over `"<t>.<raw body>"`.
/// Several `v1=` let a provider sign with an old and a new secret at once.
public struct WebhookSignature: Sendable, Equatable {
    public var timestamp: Int64
    public var signatures: [[UInt8]]

    /// Parses the header; nil when it is not of that form. Unknown keys (a
    /// future `v2=`) are skipped, so a provider can add schemes.
    public init?(header: String) {
        guard header.utf8.count <= 4096 else { return nil }
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return nil }
            let key = pair[0].trimmed
            let value = pair[1].trimmed
            switch key {
            case "t":
                guard timestamp == nil, let t = Int64(value), t >= 0 else { return nil }
                timestamp = t
            case "v1":
                guard let bytes = Self.hexBytes(value), bytes.count == SHA256.byteCount else { return nil }
                signatures.append(bytes)
            default:
                continue
            }
        }
        guard let timestamp, !signatures.isEmpty, signatures.count <= 8 else { return nil }
        self.timestamp = timestamp
        self.signatures = signatures
    }

    /// The lowercase hex `v1` value for `body` sent at `timestamp`.
    public static func sign(body: some Sequence<UInt8>, timestamp: Int64, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: signedPayload(body: body, timestamp: timestamp), using: key(secret))
        return mac.map { byte in String(byte, radix: 16).leftPadded(to: 2) }.joined()
    }

    /// A complete header value for `body`, as a provider would send it.
    public static func header(body: some Sequence<UInt8>, timestamp: Int64, secrets: [String]) -> String {
        (["t=\(timestamp)"] + secrets.map { "v1=" + sign(body: body, timestamp: timestamp, secret: $0) }).joined(separator: ",")
    }

    /// Whether any `v1` is a valid MAC of `body` under any of `secrets`, and
    /// `timestamp` is within `tolerance` seconds of `now` either way.
    /// Every comparison runs in constant time.
    public func verify(body: some Sequence<UInt8>, secrets: [String], now: Int64, tolerance: Int64) -> Bool {
        guard abs(now - timestamp) <= tolerance else { return false }
        let payload = Self.signedPayload(body: body, timestamp: timestamp)
        var valid = false
        for secret in secrets {
            for signature in signatures {
                // No early exit: the time taken does not tell which secret matched.
                valid = HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: payload, using: Self.key(secret)) || valid
            }
        }
        return valid
    }

    static func signedPayload(body: some Sequence<UInt8>, timestamp: Int64) -> [UInt8] {
        Array("\(timestamp).".utf8) + Array(body)
    }

    private static func key(_ secret: String) -> SymmetricKey { SymmetricKey(data: Array(secret.utf8)) }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Substring {
    fileprivate var trimmed: String { String(self).trimmed }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
