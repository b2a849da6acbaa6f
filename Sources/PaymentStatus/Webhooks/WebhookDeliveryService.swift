import Logging
import ServiceLifecycle
import Synchronization

/// Sends the outbox: claims due messages (leased, so on PostgreSQL each is
/// sent by one instance at a time), sends up to `maxInFlight` at once, and
/// records the attempts' outcomes, those that ended together in one write.
/// Woken by every commit (`wake()`) while an endpoint is enabled, by a
/// replay or a new endpoint (`wakeForEndpoints()`), and otherwise looks
/// again every `pollInterval` and when a retry falls due.
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
    /// Attempts that ended and wait for the loop to record them.
    private let ended = Mutex<[AttemptOutcome]>([])
    /// The soonest retry this worker scheduled, in milliseconds.
    private let soonestRetry = Mutex<Int64?>(nil)
    /// Whether an endpoint was enabled at the last look (every 2 s, with the
    /// gauges). With none, a commit wrote no message, and waking the loop
    /// for it cost a claim per commit (about 9 % of a transition's CPU, BENCHMARKS.md).
    private let endpointsEnabled = Atomic<Bool>(true)
    /// Calls of `wakeForEndpoints` so far.
    private let endpointChanges = Atomic<Int>(0)

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

    /// A commit happened: look for messages now, if it can have written any.
    public func wake() {
        if endpointsEnabled.load(ordering: .relaxed) { doorbell.ring() }
    }

    /// Whether a commit wakes the loop now (for tests).
    var wakesOnCommit: Bool { endpointsEnabled.load(ordering: .relaxed) }

    /// An endpoint was created or messages were queued again by hand: look now.
    /// (An endpoint created on another instance is seen within 2 s; the
    /// poll finds its first messages meanwhile.)
    public func wakeForEndpoints() {
        endpointChanges.add(1, ordering: .relaxed)
        endpointsEnabled.store(true, ordering: .relaxed)
        doorbell.ring()
    }

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

    /// The loop: record the attempts that ended, claim what fits, wait for a
    /// ring (an attempt ended, a commit, a retry due, the poll, shutdown),
    /// repeat. The attempts that ended while the loop was recording or
    /// claiming are recorded together in one write, and their slots, freed
    /// once they are recorded, are filled by the next claim at once. A slot
    /// is held until its outcome is stored, so the next message of the same
    /// order, due only then, can go in the same turn.
    ///
    /// A claim takes at most half the slots: attempts sent together come
    /// back together, and with every slot in one claim nothing was in flight
    /// while their outcomes were written and the next claim read (a drain's
    /// receiver waited so for half its time, BENCHMARKS.md). In halves, one
    /// half is out while the other is recorded and claimed again.
    private func deliverUntilStopped(_ sender: WebhookSender) async {
        let capacity = settings.maxInFlight
        let claimAtMost = max(1, capacity / 2)
        // Attempts claimed and not yet recorded; only this loop touches it.
        var inFlight = 0
        await withDiscardingTaskGroup { group in
            while !stopping.load(ordering: .relaxed) {
                inFlight -= await recordEnded()
                let free = capacity - inFlight
                if free > 0 {
                    let limit = min(free, claimAtMost)
                    let claimed = await claim(limit: limit)
                    inFlight += claimed.count
                    for message in claimed {
                        group.addTask { await self.attempt(message, with: sender) }
                    }
                    // A full batch: more may be due now.
                    if claimed.count == limit { continue }
                }
                await doorbell.wait(timeout: nextWait())
            }
            // Shutting down: the attempts in flight end and are recorded, or
            // are cut once the grace is over (their messages stay leased and
            // are sent again).
            let deadline = ContinuousClock.now + settings.shutdownGrace
            while true {
                inFlight -= await recordEnded()
                let left = deadline - ContinuousClock.now
                guard inFlight > 0, left > .zero else { break }
                await doorbell.wait(timeout: min(left, .milliseconds(100)))
            }
            group.cancelAll()
        }
        // What ended between the last look and the cut.
        _ = await recordEnded()
    }

    /// Stores the outcomes of the attempts that ended, in one write; returns
    /// how many there were. A write that fails leaves their messages leased:
    /// they are sent again once the lease ends.
    private func recordEnded() async -> Int {
        let outcomes = ended.withLock { ended in
            defer { ended.removeAll(keepingCapacity: true) }
            return ended
        }
        guard !outcomes.isEmpty else { return 0 }
        do {
            try await store.record(outcomes, owner: owner)
        } catch {
            logger.error(
                "could not record webhook attempts", metadata: ["attempts": "\(outcomes.count)", "error": "\(error)"])
        }
        return outcomes.count
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

    /// One attempt, counted and logged, its outcome handed to the loop to be
    /// recorded.
    private func attempt(_ message: OutboundMessage, with sender: WebhookSender) async {
        let attempt = await sender.send(message)
        // Cut by the end of the shutdown grace: not an answer of the receiver's.
        // The message stays leased and is sent again later.
        if Task.isCancelled { return }
        let verdict: MessageVerdict =
            attempt.succeeded
            ? .delivered
            : settings.schedule.verdictAfterFailure(
                attemptsMade: message.attemptCount + 1, allowed: message.attemptsAllowed, now: .now())
        if case .retry(let at) = verdict {
            soonestRetry.withLock { soonest in soonest = min(soonest ?? .max, at.millisecondsSince1970) }
        }
        ended.withLock { $0.append(AttemptOutcome(message: message, attempt: attempt, verdict: verdict)) }
        doorbell.ring()
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
            // An endpoint created while the list was read keeps the loop woken.
            let changes = endpointChanges.load(ordering: .relaxed)
            if let endpoints = try? await store.endpoints() {
                let enabled = endpoints.contains(where: \.enabled)
                if enabled || endpointChanges.load(ordering: .relaxed) == changes {
                    endpointsEnabled.store(enabled, ordering: .relaxed)
                }
            }
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
