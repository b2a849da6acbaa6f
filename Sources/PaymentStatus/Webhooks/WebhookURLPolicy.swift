#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Which URLs may receive webhooks: `https` and public addresses only, unless
/// `PAYMENT_WEBHOOK_ALLOW_HTTP` / `PAYMENT_WEBHOOK_ALLOW_PRIVATE_NETWORKS`
/// (tests, local set-ups) say otherwise. Checked at registration and again at
/// every delivery on the addresses the name resolves to then, because a name
/// can be pointed at 127.0.0.1 after it was registered (DNS rebinding).
public struct WebhookURLPolicy: Sendable {
    public var allowHTTP: Bool
    public var allowPrivateNetworks: Bool
    /// How a host name becomes addresses: the system's resolver. A test
    /// gives its own to play a name that answers differently each time,
    /// which a real resolver here cannot be made to do.
    var resolve: @Sendable (String) async -> Result<[NetworkAddress], ResolutionFailed> = HostResolver.addresses(of:)

    public init(allowHTTP: Bool = false, allowPrivateNetworks: Bool = false) {
        self.allowHTTP = allowHTTP
        self.allowPrivateNetworks = allowPrivateNetworks
    }

    static let maxLength = 2048

    /// The URL's parts, or why its form is refused (nothing is resolved).
    public func target(of text: String) throws(URLRefused) -> WebhookTarget {
        guard text.utf8.count <= Self.maxLength else { throw URLRefused("is longer than \(Self.maxLength) bytes") }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            throw URLRefused("must be an absolute URL of printable ASCII without spaces")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw URLRefused("is not an absolute URL")
        }
        switch scheme {
        case "https": break
        case "http" where allowHTTP: break
        case "http": throw URLRefused("must use https (plain http is allowed only with PAYMENT_WEBHOOK_ALLOW_HTTP)")
        default: throw URLRefused("must use https, not '\(scheme)'")
        }
        guard components.user == nil, components.password == nil else {
            throw URLRefused("must not carry a user name or password (they would be sent and logged in the clear)")
        }
        guard components.fragment == nil else { throw URLRefused("must not have a fragment") }
        var host = components.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw URLRefused("has no host") }
        if let port = components.port, !(1...65535).contains(port) { throw URLRefused("has an invalid port") }
        let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        return WebhookTarget(scheme: scheme, host: host.lowercased(), port: components.port, url: text, pathAndQuery: path + query)
    }

    /// The addresses to connect to: every address the host resolves to now,
    /// all of them public unless private networks are allowed. One private
    /// address among public ones refuses the lot: which one a connection
    /// would take is not ours to choose.
    public func addresses(of target: WebhookTarget) async throws(URLRefused) -> [NetworkAddress] {
        let addresses: [NetworkAddress]
        switch await resolve(target.host) {
        case .success(let found): addresses = found
        case .failure(let failure): throw URLRefused("has a host that does not resolve (\(failure.reason))")
        }
        if !allowPrivateNetworks {
            for address in addresses {
                if let kind = address.nonPublicKind {
                    throw URLRefused(
                        "points to \(address), which is \(kind), not a public address "
                            + "(allowed only with PAYMENT_WEBHOOK_ALLOW_PRIVATE_NETWORKS)")
                }
            }
        }
        return addresses
    }

    /// Both checks, as at registration.
    public func check(_ text: String) async throws(URLRefused) -> WebhookTarget {
        let target = try target(of: text)
        _ = try await addresses(of: target)
        return target
    }
}

/// A URL's parts as a delivery needs them; `host` without IPv6 brackets.
public struct WebhookTarget: Sendable, Equatable {
    public var scheme: String
    public var host: String
    public var port: Int?
    public var url: String
    /// What follows the authority: `/path?query`.
    public var pathAndQuery: String

    /// The URL with `address` in place of the host, for a connection to the
    /// very address that was checked; the `Host` header keeps the name.
    func url(connectingTo address: NetworkAddress) -> String {
        let host: String
        switch address {
        case .v4: host = address.description
        case .v6: host = "[\(address.description)]"
        }
        return "\(scheme)://\(host)\(port.map { ":\($0)" } ?? "")\(pathAndQuery)"
    }

    /// The `Host` header: the name as registered, with its port when it has one.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return name + (port.map { ":\($0)" } ?? "")
    }
}

/// Why a URL may not receive webhooks; the message completes "the URL …".
public struct URLRefused: Error, CustomStringConvertible, Sendable {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { "the URL \(reason)" }
}
