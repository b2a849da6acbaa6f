import Logging
import ServiceLifecycle

/// Deletes delivered messages and their attempts once they are older than
/// `PAYMENT_WEBHOOK_RETENTION_DAYS` (30 by default), every interval, in
/// small batches so that no request waits behind a long delete. Failed and
/// pending messages stay: they may still be recovered or sent.
public struct WebhookRetentionService: Service {
    let store: any WebhookStore
    let settings: WebhookSettings
    let logger: Logger

    public init(store: any WebhookStore, settings: WebhookSettings, logger: Logger) {
        self.store = store
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                await prune()
                try await Task.sleep(for: settings.retentionInterval)
            }
        }
    }

    /// Deletes batch after batch until none is left before the cutoff; returns how many went.
    @discardableResult
    public func prune(now: Timestamp = .now()) async -> Int {
        let cutoff = now.adding(.zero - settings.retention)
        var total = 0
        while !Task.isCancelled {
            do {
                let deleted = try await store.deleteDeliveredMessages(before: cutoff, limit: settings.retentionBatchSize)
                total += deleted
                if deleted < settings.retentionBatchSize { break }
            } catch {
                logger.error("webhook retention batch failed; retrying at the next run", metadata: ["error": "\(error)"])
                break
            }
        }
        if total > 0 {
            logger.info("webhook retention deleted delivered messages", metadata: [
                "messages": "\(total)", "delivered_before": "\(cutoff.rfc3339)",
            ])
        }
        return total
    }
}
