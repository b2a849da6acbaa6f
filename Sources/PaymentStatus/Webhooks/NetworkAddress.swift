#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP address a webhook URL names or resolves to, and whether it is one
/// of the public internet's: webhooks must not reach the service's own
/// machine, its private network or its cloud's metadata service (SSRF).
public enum NetworkAddress: Sendable, Hashable, CustomStringConvertible {
    case v4([UInt8])
    case v6([UInt8])

    /// An IP literal (IPv6 without brackets); nil for anything else. Only the
    /// dotted-quad form of IPv4: other spellings (`127.1`, `2130706433`) are
    /// names to this parser, and the resolver turns them into addresses.
    public init?(literal text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    public var description: String {
        switch self {
        case .v4(let bytes): return bytes.map(String.init).joined(separator: ".")
        case .v6(var bytes):
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            _ = inet_ntop(AF_INET6, &bytes, &text, socklen_t(text.count))
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Why the address is not a public one, or nil when it is.
    public var nonPublicKind: String? {
        switch self {
        case .v4(let b):
            return Self.v4Kind(b)
        case .v6(let b):
            if b.allSatisfy({ $0 == 0 }) { return "the unspecified address" }
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return "loopback" }
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return "an IPv4-mapped IPv6 address" }
            if b[0..<12].allSatisfy({ $0 == 0 }) { return "an IPv4-compatible IPv6 address" }
            if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b { return "a NAT64 address" }
            if b[0] == 0x01 && b[1] == 0x00 && b[2..<8].allSatisfy({ $0 == 0 }) { return "a discard-only address" }
            if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8 { return "a documentation address" }
            if b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02 { return "a special-purpose address (Teredo, benchmarking, ORCHID)" }
            if b[0] == 0x20 && b[1] == 0x02 { return "a 6to4 address" }
            if b[0] & 0xfe == 0xfc { return "a unique-local address" }
            if b[0] == 0xfe && b[1] & 0xc0 == 0x80 { return "link-local" }
            if b[0] == 0xfe && b[1] & 0xc0 == 0xc0 { return "a site-local address" }
            if b[0] == 0xff { return "multicast" }
            return nil
        }
    }

    private static func v4Kind(_ b: [UInt8]) -> String? {
        switch (b[0], b[1], b[2]) {
        case (0, _, _): return b.allSatisfy({ $0 == 0 }) ? "the unspecified address" : "this network (0.0.0.0/8)"
        case (10, _, _): return "private (10.0.0.0/8)"
        case (100, 64...127, _): return "shared address space (100.64.0.0/10)"
        case (127, _, _): return "loopback"
        case (169, 254, _): return "link-local"
        case (172, 16...31, _): return "private (172.16.0.0/12)"
        case (192, 0, 0): return "IETF protocol assignments (192.0.0.0/24)"
        case (192, 0, 2), (198, 51, 100), (203, 0, 113): return "a documentation address"
        case (192, 88, 99): return "6to4 relay anycast"
        case (192, 168, _): return "private (192.168.0.0/16)"
        case (198, 18...19, _): return "benchmarking (198.18.0.0/15)"
        case (224...239, _, _): return "multicast"
        case (240...255, _, _): return b.allSatisfy({ $0 == 255 }) ? "broadcast" : "reserved (240.0.0.0/4)"
        default: return nil
        }
    }
}
