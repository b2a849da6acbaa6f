import Logging
import ServiceLifecycle

/// Deletes the orders that reached a final status more than `retention` ago,
/// with their events (`PAYMENT_RETENTION_DAYS`), every `interval`. It works
/// in batches of `batchSize` orders, each one transaction among the
/// requests' writes, so that no request waits for more than one batch.
public struct RetentionService: Service {
    let store: any PruningStore
    let retention: Duration
    let interval: Duration
    let batchSize: Int
    let metrics: ServiceMetrics
    let logger: Logger

    public init(
        store: any PruningStore, retention: Duration, interval: Duration, batchSize: Int, metrics: ServiceMetrics, logger: Logger
    ) {
        self.store = store
        self.retention = retention
        self.interval = interval
        self.batchSize = max(1, batchSize)
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        logger.notice("retention is on", metadata: [
            "retention_days": "\(retention.components.seconds / 86_400)", "interval": "\(interval)",
        ])
        try? await cancelWhenGracefulShutdown {
            while true {
                await prune()
                try await Task.sleep(for: interval)
            }
        }
    }

    /// Deletes, batch after batch, every order that finished before
    /// `now - retention`, and returns what went. A failing batch is logged and
    /// ends this run; the next run tries again.
    @discardableResult
    public func prune(now: Timestamp = .now()) async -> PrunedOrders {
        let cutoff = Timestamp(millisecondsSince1970: now.millisecondsSince1970 - retention.components.seconds * 1000)
        var total = PrunedOrders(orders: 0, events: 0)
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let batch: PrunedOrders
            do {
                batch = try await store.deleteFinishedOrders(finishedBefore: cutoff, limit: batchSize)
            } catch {
                logger.error("retention batch failed; retrying at the next run", metadata: [
                    "finished_before": "\(cutoff.rfc3339)", "error": "\(error)",
                ])
                break
            }
            total.orders += batch.orders
            total.events += batch.events
            guard batch.orders > 0 else { break }
            metrics.pruned(orders: batch.orders, events: batch.events)
            logger.info("retention deleted finished orders", metadata: [
                "orders": "\(batch.orders)", "events": "\(batch.events)", "finished_before": "\(cutoff.rfc3339)",
                "duration_ms": "\((ContinuousClock.now - started).nanoseconds / 1_000_000)",
            ])
            if batch.orders < batchSize { break }
        }
        if total.orders == 0 {
            logger.debug("retention found no order to delete", metadata: ["finished_before": "\(cutoff.rfc3339)"])
        }
        return total
    }
}
