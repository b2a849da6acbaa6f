import NIOCore
import NIOSSL

/// TLS for the tool's connections to an `https://` server. The servers it
/// measures run on loopback with a throwaway certificate, so certificates are
/// accepted unverified; what is measured is the handshake and the encryption.
enum ClientTLS {
    /// ALPN offers `http/1.1` only: one request or stream per connection.
    static let http1 = context(offering: ["http/1.1"])
    /// ALPN offers `h2` only: the server must speak HTTP/2 or refuse.
    static let http2 = context(offering: ["h2"])

    /// The handler that starts a connection's pipeline.
    static func handler(_ context: NIOSSLContext) -> NIOSSLClientHandler {
        // No server name: the certificate is not checked, and an IP address is not a valid SNI name.
        do {
            return try NIOSSLClientHandler(context: context, serverHostname: nil)
        } catch {
            fatalError("cannot start a TLS client handler: \(error)")
        }
    }

    private static func context(offering protocols: [String]) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        configuration.applicationProtocols = protocols
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            fatalError("cannot make a TLS client context: \(error)")
        }
    }
}
