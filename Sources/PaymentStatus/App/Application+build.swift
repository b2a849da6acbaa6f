import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import ServiceLifecycle

/// The parts of a running service, built once and shared by the routes.
public struct AppServices: Sendable {
    public let store: any PaymentStore
    public let hub: StreamHub
    public let credentials: Credentials
    public let configuration: AppConfiguration
    public let metrics: ServiceMetrics
    /// With PostgreSQL, what feeds other instances' events to this one's hub.
    public let relay: PostgresRelay?
    /// With SQLite, what checkpoints the WAL off the write path.
    public let checkpointer: SQLiteCheckpointer?
    /// With a certificate and key configured, the pair the server presents.
    public let tls: TLSCertificateStore?
    /// With `PAYMENT_RETENTION_DAYS`, what deletes finished orders past it.
    public let retention: RetentionService?
    /// What sends the outbox's webhooks to the merchant, and what prunes it.
    public let webhooks: WebhookDeliveryService?
    public let webhookRetention: WebhookRetentionService?

    /// Opens the database, applies pending migrations and resolves the secrets.
    public static func open(
        _ configuration: AppConfiguration, logger: Logger, announce: (String) -> Void = { _ in }
    ) async throws -> AppServices {
        // Before the database: a start that cannot serve must not migrate it either.
        var tls: TLSCertificateStore?
        if let files = try configuration.tlsFiles() { tls = try TLSCertificateStore(files: files) }
        let store = try await openStore(configuration.database, logger: logger)
        do {
            let applied = try await store.migrate(migrations: configuration.migrationsDirectory)
            for name in applied { logger.info("applied migration", metadata: ["migration": "\(name)"]) }
            let credentials = try await Credentials.resolve(configuration, store: store, announce: announce)
            let hub = StreamHub(configuration: .init(
                heartbeatInterval: configuration.heartbeatInterval, maxLifetime: configuration.streamTimeout,
                drainPeriod: configuration.drainPeriod))
            let metrics = ServiceMetrics()
            let webhookStore = store as? any WebhookStore
            var webhookSettings = configuration.webhooks
            webhookSettings.shutdownGrace = configuration.drainPeriod
            let webhooks = webhookStore.map {
                WebhookDeliveryService(
                    store: $0, settings: webhookSettings,
                    owner: (store as? PostgresStore)?.instanceID ?? GeneratedID.random(12),
                    ownsEveryLease: store is SQLiteStore, metrics: metrics, logger: logger)
            }
            let webhookRetention = webhookStore.map {
                WebhookRetentionService(store: $0, settings: configuration.webhooks, logger: logger)
            }
            let relay = (store as? PostgresStore).map {
                PostgresRelay(store: $0, hub: hub, logger: logger, remoteCommitted: { webhooks?.wake() })
            }
            let checkpointer = try (store as? SQLiteStore).map { try SQLiteCheckpointer(store: $0, logger: logger) }
            let retention = configuration.retention.flatMap { retention in
                (store as? any PruningStore).map {
                    RetentionService(
                        store: $0, retention: retention, interval: configuration.retentionInterval,
                        batchSize: configuration.retentionBatchSize, metrics: metrics, logger: logger)
                }
            }
            return AppServices(
                store: store, hub: hub, credentials: credentials, configuration: configuration, metrics: metrics,
                relay: relay, checkpointer: checkpointer, tls: tls, retention: retention, webhooks: webhooks,
                webhookRetention: webhookRetention)
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// The store for the location; a PostgreSQL one gets a fresh instance id.
    public static func openStore(_ location: DatabaseLocation, logger: Logger) async throws -> any PaymentStore {
        switch location {
        case .sqlite(let path):
            try SQLiteStore(path: path)
        case .postgres(let server):
            try await PostgresStore.open(server, instanceID: GeneratedID.random(12), logger: logger)
        }
    }
}

/// Builds the HTTP application on already opened services; tests build the very same one.
public func buildApplication(_ services: AppServices, logger: Logger) throws -> some ApplicationProtocol {
    let configuration = services.configuration
    var extraServices: [any Service] = []
    if let tls = services.tls {
        extraServices.append(CertificateReloader(store: tls, logger: logger))
        logger.notice("serving HTTPS (HTTP/2 and HTTP/1.1)", metadata: ["certificate": "\(tls.identity.summary)"])
    }
    return Application(
        router: try buildRouter(services, logger: logger),
        server: try serverBuilder(configuration, tls: services.tls),
        // A reconnect storm (every stream of an instance that restarted, ten
        // thousand long-polls answered at once) arrives faster than the accept
        // loop takes it; past Hummingbird's default queue of 256 the kernel drops
        // the SYNs and each client waits 1, 3, 7 s before trying again. The
        // kernel caps this at net.core.somaxconn.
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil, backlog: 4096),
        // Shut down in reverse order: the server first, then retention stops
        // between two batches, webhook attempts in flight end and are
        // recorded, the hub drains its streams while the relay still feeds
        // them other instances' events, and the database closes last.
        services: [
            DatabaseCloser(store: services.store, logger: logger) as (any Service)?, services.relay, services.hub,
            services.checkpointer, services.webhooks, services.webhookRetention, services.retention,
        ].compactMap { $0 } + extraServices,
        onServerRunning: { channel in
            // Notice level, so it shows above the access log's info lines; tests read the port from it.
            let address = channel.localAddress
            logger.notice("payment-status listening on \(address?.ipAddress ?? "?"):\(address?.port ?? 0)")
        },
        logger: logger)
}

/// Plain HTTP/1.1, or with TLS files HTTPS only: HTTP/2 and HTTP/1.1 offered by ALPN.
func serverBuilder(_ configuration: AppConfiguration, tls: TLSCertificateStore?) throws -> HTTPServerBuilder {
    let idleTimeout = TimeAmount(configuration.idleTimeout)
    // An HTTP/1.1 connection, or (over HTTP/2) one stream of a connection.
    let http1 = HTTP1Channel.Configuration(
        // The framing rules hostile clients would abuse, then what writes an
        // order's stream once the stream route hands the connection (or HTTP/2 stream) over.
        additionalChannelHandlers: [
            RequestGuardHandler(bodyTimeout: configuration.bodyTimeout, drainPeriod: configuration.drainPeriod),
            SSEConnectionHandler(),
        ],
        idleTimeout: idleTimeout,
        // Generous for browsers and proxies, small enough that header floods cost little.
        httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 * 1024, maxHeaderListSize: 32 * 1024, maxHeaderFieldCount: 100))
    guard let tls else { return .http1(configuration: http1) }
    let tlsConfiguration = tls.serverConfiguration()
    let http2 = HTTP2ChannelConfiguration(
        // A connection with no open stream is closed after this, as an idle HTTP/1.1 one is.
        idleTimeout: configuration.idleTimeout,
        // No forced close at shutdown: after GOAWAY its streams end over the
        // drain period, as HTTP/1.1 ones do, and it closes after the last.
        gracefulCloseTimeout: nil,
        streamConfiguration: http1)
    return HTTPServerBuilder { responder in
        TLSServerChannel(
            inner: try HTTP2UpgradeChannel(tlsConfiguration: tlsConfiguration, configuration: http2, responder: responder),
            handshakeDeadline: idleTimeout)
    }
}

/// All routes of the contract, behind the problem+json middleware.
func buildRouter(_ services: AppServices, logger: Logger) throws -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    // CORS outermost, so that error answers carry its headers too.
    router.add(middleware: CheckoutCORSMiddleware(allowedOrigins: Set(services.configuration.corsOrigins)))
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: RequestMetricsMiddleware(metrics: services.metrics))
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: MethodNotAllowedMiddleware(
        routes: routeTable + (services.configuration.demo ? demoRouteTable : [])))
    let orderService = OrderService(
        store: services.store, bus: services.hub, metrics: services.metrics, webhooks: services.webhooks,
        uncertain: services.relay.map { relay -> @Sendable (String) -> Void in { relay.recheck(orderID: $0) } })

    HealthController(store: services.store, hub: services.hub, metrics: services.metrics).addRoutes(to: router)
    try DocumentsController().addRoutes(to: router)
    if services.configuration.demo {
        logger.warning("demo endpoints are on: anyone can create orders and play the provider; never do this in production")
        DemoController(service: orderService, credentials: services.credentials).addRoutes(to: router)
    }
    StreamController(
        store: services.store, bus: services.hub, credentials: services.credentials,
        retryMilliseconds: services.configuration.retryMilliseconds, maxStreams: services.configuration.maxStreams,
        drainPeriod: services.configuration.drainPeriod, metrics: services.metrics
    ).addRoutes(to: router)
    WebhookController(
        service: orderService, credentials: services.credentials,
        tolerance: services.configuration.webhookTolerance, metrics: services.metrics
    ).addRoutes(to: router)
    OrderController(service: orderService, credentials: services.credentials)
        .addRoutes(to: router.group("v1/orders").add(middleware: MerchantAuthMiddleware(credentials: services.credentials)))
    FeedController(
        store: services.store, bus: services.hub, retryMilliseconds: services.configuration.retryMilliseconds,
        maxStreams: services.configuration.maxStreams, drainPeriod: services.configuration.drainPeriod, metrics: services.metrics
    ).addRoutes(to: router.group("v1/events").add(middleware: MerchantAuthMiddleware(credentials: services.credentials)))
    if let store = services.store as? any WebhookStore {
        WebhookEndpointController(store: store, policy: services.configuration.webhooks.policy, delivery: services.webhooks)
            .addRoutes(to: router.group("v1/webhook-endpoints").add(middleware: MerchantAuthMiddleware(credentials: services.credentials)))
    }

    return router
}

/// Every route and the methods it serves, for 405 answers.
let routeTable: [(path: String, methods: [HTTPRequest.Method])] = [
    ("healthz", [.get]),
    ("readyz", [.get]),
    ("metrics", [.get]),
    ("openapi.yaml", [.get]),
    ("client/payment-status.js", [.get]),
    ("client/payment-status.d.ts", [.get]),
    ("/", [.get]),
    ("v1/orders", [.post]),
    ("v1/orders/{order_id}", [.get]),
    ("v1/orders/{order_id}/transitions", [.post]),
    ("v1/orders/{order_id}/stream-token", [.post]),
    ("v1/orders/{order_id}/events", [.get]),
    ("v1/webhooks/payment-status", [.post]),
    ("v1/events", [.get]),
    ("v1/webhook-endpoints", [.get, .post]),
    ("v1/webhook-endpoints/{endpoint_id}", [.get, .delete]),
    ("v1/webhook-endpoints/{endpoint_id}/rotate-secret", [.post]),
    ("v1/webhook-endpoints/{endpoint_id}/messages", [.get]),
    ("v1/webhook-endpoints/{endpoint_id}/messages/{message_id}/retry", [.post]),
    ("v1/webhook-endpoints/{endpoint_id}/recover", [.post]),
]

/// The demo page's routes, served (and so in the 405 table) only with `--demo`.
let demoRouteTable: [(path: String, methods: [HTTPRequest.Method])] = [
    ("demo/orders", [.post]),
    ("demo/orders/{order_id}/provider", [.post]),
]

/// Closes the database last, after the server and the streams have stopped,
/// so that in-flight writes commit first.
struct DatabaseCloser: Service {
    let store: any PaymentStore
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        do {
            try await store.close()
            logger.notice("database closed")
        } catch {
            logger.error("closing the database failed", metadata: ["error": "\(error)"])
        }
    }
}
