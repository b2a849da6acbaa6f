import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The bus between instances sharing a PostgreSQL store: one dedicated
/// connection `LISTEN`s on the store's channel and hands every other
/// instance's committed events to this instance's hub. Events this instance
/// committed reached its hub straight after the commit.
///
/// Notifications are lost while the connection is down, so after each
/// (re)connection, once `LISTEN` is in place, every watched order is re-read
/// from the last `seq` its streams were given. Streams skip what they
/// already sent, so an event read and also notified is written once.
public final class PostgresRelay: Service {
    let store: PostgresStore
    let hub: StreamHub
    let logger: Logger
    /// How often the listening connection is checked, so that a connection
    /// that died silently is noticed and replaced.
    let pingInterval: Duration
    /// Told of every other instance's commit: webhook delivery wakes on it.
    let remoteCommitted: @Sendable () -> Void
    /// How this instance's own notices begin (`EventNotice.ownPrefix`).
    private let ownPrefix: String
    /// Orders whose latest write may have committed unseen, with when and
    /// how often they are read again (see PostgresRelay+recheck.swift).
    let rechecks = Mutex<[String: Recheck]>([:])
    let recheckBell = Doorbell()

    /// Connections made so far (the first one included); read by tests.
    public var connections: Int { counter.withLock { $0 } }
    private let counter = Mutex(0)
    /// Catch-up reads finished so far (one per connection, once it listens):
    /// after it, only notifications bring events, which tests rely on.
    public var catchUpsDone: Int { catchUps.withLock { $0 } }
    private let catchUps = Mutex(0)

    public init(
        store: PostgresStore, hub: StreamHub, logger: Logger, pingInterval: Duration = .seconds(5),
        remoteCommitted: @escaping @Sendable () -> Void = {}
    ) {
        self.remoteCommitted = remoteCommitted
        self.store = store
        self.hub = hub
        self.logger = logger
        self.pingInterval = pingInterval
        self.ownPrefix = EventNotice.ownPrefix(instance: store.instanceID)
    }

    /// The `application_name` of the listening connection, per instance.
    public var applicationName: String { "payment-status-relay-\(store.instanceID)" }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.recheckUntilCancelled() }
                var failures = 0
                while !Task.isCancelled {
                    do {
                        try await self.listen { failures = 0 }
                    } catch {
                        if Task.isCancelled { break }
                        self.logger.warning("the PostgreSQL notification connection failed; reconnecting", metadata: ["error": "\(String(reflecting: error))"])
                    }
                    failures += 1
                    // 50 ms, doubling up to 2 s: quick after a blip, gentle while the server is down.
                    let delay = Duration.milliseconds(50 << min(failures - 1, 5))
                    try? await Task.sleep(for: delay)
                }
                group.cancelAll()
            }
        }
    }

    /// One connection's life: listen, catch up, then relay until it fails.
    private func listen(onListening: () -> Void) async throws {
        let id = counter.withLock { count -> Int in
            count += 1
            return count
        }
        let connection = try await PostgresConnection.connect(
            configuration: store.location.connectionConfiguration(applicationName: applicationName), id: id, logger: logger)
        do {
            try await withTaskCancellationHandler {
                try await connection.listen(on: PostgresStore.channel) { notifications in
                    onListening()
                    logger.info("listening for other instances' events", metadata: ["connection": "\(id)"])
                    try await catchUp()
                    catchUps.withLock { $0 += 1 }
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await notification in notifications { try await self.relay(notification.payload) }
                            throw NotificationsEnded()
                        }
                        group.addTask {
                            while true {
                                try await Task.sleep(for: self.pingInterval)
                                _ = try await connection.query("SELECT 1", logger: self.logger).collect()
                            }
                        }
                        try await group.next()
                        group.cancelAll()
                    }
                }
            } onCancel: {
                _ = connection.close() as EventLoopFuture<Void>
            }
        } catch {
            // Closed before it is released, whatever ended it.
            try? await connection.close()
            throw error
        }
    }

    /// Re-reads every watched order from the last `seq` its streams were given.
    private func catchUp() async throws {
        let watermarks = hub.watermarks()
        var caughtUp = 0
        for start in stride(from: 0, to: watermarks.count, by: 1000) {
            let missed = try await store.events(after: Array(watermarks[start..<min(start + 1000, watermarks.count)]))
            for event in missed { hub.publish(event) }
            caughtUp += missed.count
        }
        if caughtUp > 0 { logger.notice("re-read events missed while not listening", metadata: ["events": "\(caughtUp)"]) }
    }

    /// Hands one notified event to the hub, reading it when the notice does not carry it.
    private func relay(_ payload: String) async throws {
        // This instance's own: its streams had the event straight after the commit.
        if payload.hasPrefix(ownPrefix) { return }
        let notice: EventNotice
        do {
            notice = try EventNotice(payload: payload)
        } catch {
            logger.error("ignored a notification that is not an event notice", metadata: ["payload": "\(payload.prefix(200))"])
            return
        }
        guard notice.instance != store.instanceID else { return }
        remoteCommitted()
        guard hub.isWatching(notice.orderID) else { return }
        if let event = try notice.paymentEvent() {
            hub.publish(event)
        } else {
            for event in try await store.events(orderID: notice.orderID, after: notice.seq - 1, limit: 1) { hub.publish(event) }
        }
    }
}

/// The server ended the notification stream (the connection closed).
struct NotificationsEnded: Error, CustomStringConvertible {
    var description: String { "the notification stream ended" }
}
