import Logging
import ServiceLifecycle

/// Deletes delivered and failed messages and their attempts once they were
/// finished more than `PAYMENT_WEBHOOK_RETENTION_DAYS` ago (30 by default),
/// every interval, in small batches so that no request waits behind a long
/// delete. A failed message can be recovered for that long after its last
/// attempt; a later retry or recover makes it pending again, and pending
/// messages stay until they are sent: the outbox stays bounded by the
/// retention and what is still owed.
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
                let deleted = try await store.deleteFinishedMessages(before: cutoff, limit: settings.retentionBatchSize)
                total += deleted
                if deleted < settings.retentionBatchSize { break }
            } catch {
                logger.error("webhook retention batch failed; retrying at the next run", metadata: ["error": "\(error)"])
                break
            }
        }
        if total > 0 {
            logger.info("webhook retention deleted finished messages", metadata: [
                "messages": "\(total)", "finished_before": "\(cutoff.rfc3339)",
            ])
        }
        return total
    }
}
