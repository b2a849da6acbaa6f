import Logging
import ServiceLifecycle
import Synchronization

/// Sends the outbox: claims due messages (leased, so on PostgreSQL each is
/// sent by one instance at a time), sends up to `maxInFlight` at once, and
/// records each attempt's outcome. Woken by every commit (`wake()`), and
/// otherwise looks again every `pollInterval` and when a retry falls due.
///
/// At shutdown it claims nothing more and lets the attempts in flight end
/// and be recorded before the database closes, for up to
/// `settings.shutdownGrace`; those still waiting for an answer then are
/// cut and left leased, as are those of a process killed meanwhile, and
/// are sent again once the lease ends (PostgreSQL) or at the next start
/// (SQLite): left to be retried, never lost.
public final class WebhookDeliveryService: Service {
    let store: any WebhookStore
    let settings: WebhookSettings
    /// This worker's name on the leases it holds.
    let owner: String
    /// SQLite has one worker, so a lease found at start is a crashed one's.
    let ownsEveryLease: Bool
    let metrics: ServiceMetrics
    let logger: Logger
    private let doorbell = Doorbell()
    private let stopping = Atomic<Bool>(false)
    /// Attempts running now.
    private let inFlight = Atomic<Int>(0)
    /// The soonest retry this worker scheduled, in milliseconds.
    private let soonestRetry = Mutex<Int64?>(nil)

    public init(
        store: any WebhookStore, settings: WebhookSettings, owner: String, ownsEveryLease: Bool, metrics: ServiceMetrics,
        logger: Logger
    ) {
        self.store = store
        self.settings = settings
        self.owner = owner
        self.ownsEveryLease = ownsEveryLease
        self.metrics = metrics
        self.logger = logger
    }

    /// A commit happened: look for messages now.
    public func wake() { doorbell.ring() }

    public func run() async throws {
        guard settings.delivers else {
            // Nothing is sent from here; the gauges still show the backlog
            // growing, which is what an operator watches while it is off.
            logger.notice("webhook delivery is off on this instance (PAYMENT_WEBHOOK_DELIVERY=off): messages are stored, not sent")
            await cancelWhenGracefulShutdown { await self.reportBacklog() }
            return
        }
        if ownsEveryLease {
            do { try await store.releaseLeases(owner: nil) } catch {
                logger.error("could not release the webhook leases of an earlier run", metadata: ["error": "\(error)"])
            }
        }
        // Made here, not at init: an HTTP client must be shut down, and services
        // that are opened but never run (tests, commands) would leak one.
        let sender = WebhookSender(
            policy: settings.policy, maxConnectionsPerHost: settings.maxInFlight, extraTrustRoots: settings.extraTrustRoots)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.reportBacklog() }
                await self.deliverUntilStopped(sender)
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
            self.doorbell.ring()
        }
        await sender.shutdown()
    }

    /// The loop: claim what fits, wait for a ring (an attempt ended, a commit,
    /// a retry due, the poll, shutdown), repeat. An attempt that ends rings
    /// too, so while one claim waits for its commit the slots freed meanwhile
    /// add up, and the next claim fills all of them at once.
    private func deliverUntilStopped(_ sender: WebhookSender) async {
        let capacity = settings.maxInFlight
        await withDiscardingTaskGroup { group in
            while !stopping.load(ordering: .relaxed) {
                let free = capacity - inFlight.load(ordering: .relaxed)
                if free > 0 {
                    let claimed = await claim(limit: free)
                    for message in claimed {
                        inFlight.add(1, ordering: .relaxed)
                        group.addTask {
                            await self.deliver(message, with: sender)
                            self.inFlight.subtract(1, ordering: .relaxed)
                            self.doorbell.ring()
                        }
                    }
                    // A full batch: more may be due now.
                    if claimed.count == free { continue }
                }
                await doorbell.wait(timeout: nextWait())
            }
            // Shutting down: the attempts in flight end and are recorded, or
            // are cut once the grace is over (their messages stay leased and
            // are sent again).
            let deadline = ContinuousClock.now + settings.shutdownGrace
            while inFlight.load(ordering: .relaxed) > 0 {
                let left = deadline - ContinuousClock.now
                guard left > .zero else {
                    group.cancelAll()
                    break
                }
                await doorbell.wait(timeout: min(left, .milliseconds(100)))
            }
        }
    }

    private func claim(limit: Int) async -> [OutboundMessage] {
        let now = Timestamp.now()
        do {
            return try await store.claimMessages(owner: owner, now: now, leaseUntil: now.adding(settings.lease), limit: limit)
        } catch {
            logger.error("could not claim webhook messages; trying again shortly", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// How long to wait for a ring: the poll interval, or less when a retry
    /// this worker scheduled falls due sooner.
    private func nextWait() -> Duration {
        let now = Timestamp.now().millisecondsSince1970
        let poll = settings.pollInterval
        return soonestRetry.withLock { soonest -> Duration in
            guard let due = soonest else { return poll }
            if due <= now {
                soonest = nil
                return .milliseconds(1)
            }
            return min(poll, .milliseconds(due - now))
        }
    }

    /// One attempt, its outcome stored, counted and logged.
    private func deliver(_ message: OutboundMessage, with sender: WebhookSender) async {
        let attempt = await sender.send(message)
        // Cut by the end of the shutdown grace: not an answer of the receiver's.
        // The message stays leased and is sent again later.
        if Task.isCancelled { return }
        let verdict: MessageVerdict =
            attempt.succeeded
            ? .delivered
            : settings.schedule.verdictAfterFailure(
                attemptsMade: message.attemptCount + 1, allowed: message.attemptsAllowed, now: .now())
        do {
            try await store.record(attempt, of: message, verdict: verdict, owner: owner)
        } catch {
            // Still leased: it is sent again once the lease ends.
            logger.error("could not record a webhook attempt", metadata: ["message_id": "\(message.id)", "error": "\(error)"])
        }
        if case .retry(let at) = verdict {
            soonestRetry.withLock { soonest in soonest = min(soonest ?? .max, at.millisecondsSince1970) }
        }
        metrics.webhookAttempted(verdict: verdict, duration: .milliseconds(attempt.durationMilliseconds))
        let level: Logger.Level = verdict == .failed ? .warning : .info
        // The line's fields cost more than the rest of a fast attempt: made only when it is written.
        guard logger.logLevel <= level else { return }
        var metadata: Logger.Metadata = [
            "message_id": "\(message.id)", "endpoint_id": "\(message.endpointID)", "order_id": "\(message.orderID)",
            "seq": "\(message.seq)", "attempt": "\(message.attemptCount + 1)", "duration_ms": "\(attempt.durationMilliseconds)",
            "status_code": "\(attempt.statusCode.map(String.init) ?? "none")", "outcome": "\(verdict.name)",
        ]
        if let error = attempt.error { metadata["error"] = "\(error)" }
        if case .retry(let at) = verdict { metadata["next_attempt_at"] = "\(at.rfc3339)" }
        logger.log(level: level, "webhook attempt", metadata: metadata)
    }

    /// Keeps the pending gauges current (every 2 s).
    private func reportBacklog() async {
        while !Task.isCancelled {
            if let backlog = try? await store.outboxBacklog() { metrics.webhookBacklog(backlog, now: .now()) }
            try? await Task.sleep(for: .seconds(2))
        }
    }
}

extension MessageVerdict {
    /// The outcome's name in logs and metrics.
    var name: String {
        switch self {
        case .delivered: "delivered"
        case .retry: "retried"
        case .failed: "failed"
        }
    }
}
