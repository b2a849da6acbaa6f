import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Resolves a host name with the system's resolver (getaddrinfo), off the
/// cooperative threads: a lookup may block for seconds.
enum HostResolver {
    private static let queue = DispatchQueue(label: "payment-status.webhook-resolver", attributes: .concurrent)

    /// Every address `host` resolves to (an IP literal resolves to itself),
    /// or the resolver's error.
    static func addresses(of host: String) async -> Result<[NetworkAddress], ResolutionFailed> {
        if let literal = NetworkAddress(literal: host) { return .success([literal]) }
        return await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: lookUp(host)) }
        }
    }

    private static func lookUp(_ host: String) -> Result<[NetworkAddress], ResolutionFailed> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            return .failure(ResolutionFailed(host: host, reason: String(cString: gai_strerror(status))))
        }
        defer { freeaddrinfo(first) }
        var addresses: [NetworkAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            if let raw = info.pointee.ai_addr {
                switch info.pointee.ai_family {
                case AF_INET:
                    var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    addresses.append(.v4(withUnsafeBytes(of: &address) { Array($0) }))
                case AF_INET6:
                    var address = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    addresses.append(.v6(withUnsafeBytes(of: &address) { Array($0) }))
                default:
                    break
                }
            }
            entry = info.pointee.ai_next
        }
        if addresses.isEmpty { return .failure(ResolutionFailed(host: host, reason: "no IPv4 or IPv6 address")) }
        var unique: [NetworkAddress] = []
        for address in addresses where !unique.contains(address) { unique.append(address) }
        return .success(unique)
    }
}

/// A host name that did not resolve.
struct ResolutionFailed: Error, CustomStringConvertible {
    let host: String
    let reason: String
    var description: String { "'\(host)' does not resolve: \(reason)" }
}
