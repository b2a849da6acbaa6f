import Logging
import NIOSSL
import Synchronization

/// The certificate and key the server presents, replaceable while it runs.
///
/// Every TLS handshake asks this store for the current pair (NIOSSL's
/// context callback, run on the connection's event loop as the client's
/// hello is read), so a reload reaches new connections only: an open
/// connection finished its handshake with the pair it got and keeps it, with
/// its streams.
public final class TLSCertificateStore: Sendable {
    public let files: TLSFiles
    private let current: Mutex<TLSIdentity>

    /// Reads the pair; start-up fails here on a file that cannot be used.
    public init(files: TLSFiles) throws(ConfigurationError) {
        self.files = files
        current = Mutex(try TLSIdentity.load(files))
    }

    /// The pair new connections get.
    public var identity: TLSIdentity { current.withLock { $0 } }

    /// Reads both files again and, when they make a valid pair, hands it to
    /// the connections accepted from now on. On an error the old pair stays.
    @discardableResult
    public func reload() throws(ConfigurationError) -> TLSIdentity {
        let identity = try TLSIdentity.load(files)
        current.withLock { $0 = identity }
        return identity
    }

    /// `reload()`, with its outcome logged: what SIGHUP does.
    func reload(logger: Logger) {
        do {
            let identity = try reload()
            logger.notice("TLS certificate reloaded", metadata: ["certificate": "\(identity.summary)"])
        } catch {
            logger.error(
                "TLS certificate not reloaded; new connections keep the previous one",
                metadata: ["error": "\(error)"])
        }
    }

    /// The server's TLS configuration: the pair read at start-up, replaced at
    /// each handshake by the current one. ALPN is added by the HTTP/2 channel.
    func serverConfiguration() -> TLSConfiguration {
        var configuration = identity.serverConfiguration()
        configuration.sslContextCallback = { [self] _, promise in
            promise.succeed(identity.handshakeOverride)
        }
        return configuration
    }
}
