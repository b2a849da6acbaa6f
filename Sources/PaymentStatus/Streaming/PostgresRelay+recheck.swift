/// Writes whose outcome this instance does not know. A commit whose answer
/// was lost (the connection went dark, the answer timeout passed) may have
/// committed all the same; its event then reached neither this instance's
/// streams, which had it straight after a commit that returned, nor the
/// relay, which skips this instance's own notices. A final status would
/// never reach a checkout page watching here. So the order is read again,
/// from where its streams are, until the write's fate must be settled:
/// at once, then 1, 2, 4 … 64 s later (a commit that PostgreSQL was still
/// syncing when the answer timed out lands within that). Streams skip what
/// they already sent, so an event read twice is written once.
extension PostgresRelay {
    struct Recheck: Sendable {
        var due: ContinuousClock.Instant
        /// Reads done so far.
        var done: Int
    }

    /// Reads after the first, at 1, 2, 4 … 64 s.
    static let recheckDelays: [Duration] = (0..<7).map { .seconds(1 << $0) }

    /// `orderID`'s latest write failed without an answer: read the order
    /// again for the streams watching it here (none: nothing to do, a stream
    /// that opens later reads the order's history itself).
    public func recheck(orderID: String) {
        guard hub.isWatching(orderID) else { return }
        rechecks.withLock { $0[orderID] = Recheck(due: .now, done: 0) }
        recheckBell.ring()
    }

    func recheckUntilCancelled() async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            let (due, next) = rechecks.withLock { rechecks -> ([String], ContinuousClock.Instant?) in
                let due = rechecks.filter { $0.value.due <= now }.map(\.key)
                return (due, rechecks.values.filter { $0.due > now }.map(\.due).min())
            }
            if !due.isEmpty {
                let read = await reread(due)
                rechecks.withLock { rechecks in
                    for order in due {
                        guard var recheck = rechecks[order] else { continue }
                        // Not read (the database does not answer): again in a second, same step.
                        guard read else {
                            recheck.due = .now + .seconds(1)
                            rechecks[order] = recheck
                            continue
                        }
                        if recheck.done < Self.recheckDelays.count {
                            recheck.due = .now + Self.recheckDelays[recheck.done]
                            recheck.done += 1
                            rechecks[order] = recheck
                        } else {
                            rechecks[order] = nil
                        }
                    }
                }
                continue
            }
            await recheckBell.wait(timeout: next.map { $0 - now } ?? .seconds(3600))
        }
    }

    /// Publishes what the orders' streams here have not had; false when the
    /// database did not answer.
    private func reread(_ orders: [String]) async -> Bool {
        let wanted = Set(orders)
        let watermarks = hub.watermarks().filter { wanted.contains($0.orderID) }
        do {
            let missed = try await store.events(after: watermarks)
            for event in missed { hub.publish(event) }
            if !missed.isEmpty {
                logger.notice("published events of writes whose answer was lost", metadata: ["events": "\(missed.count)"])
            }
            return true
        } catch {
            return false
        }
    }
}
