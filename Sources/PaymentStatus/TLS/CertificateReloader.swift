import Dispatch
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reloads the TLS certificate and key on SIGHUP, the signal operators and
/// certificate tools (certbot's deploy hook, cert-manager sidecars) send
/// after renewing them.
///
/// The handler is installed when this is made, before the server listens: a
/// SIGHUP's default action ends the process, and a renewal that lands just
/// after a start must not do that.
struct CertificateReloader: Service {
    private let source: SignalSource

    init(store: TLSCertificateStore, logger: Logger) {
        // The default action would end the process; the dispatch source sees the signal regardless.
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "payment-status.tls-reload"))
        // Reading the files blocks, so it runs on this queue, never on an event loop.
        source.setEventHandler { store.reload(logger: logger) }
        source.resume()
        self.source = SignalSource(source: source)
    }

    func run() async throws {
        try? await gracefulShutdown()
        source.source.cancel()
    }

    /// The dispatch source is used only to cancel it, which is safe from any thread.
    private struct SignalSource: @unchecked Sendable {
        let source: any DispatchSourceSignal
    }
}
