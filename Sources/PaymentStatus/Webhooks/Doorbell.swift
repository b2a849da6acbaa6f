import Synchronization

/// Wakes the delivery loop: rung after each commit, so a message goes out
/// at once rather than at the next poll. A ring while nobody waits is kept
/// (one), so a commit that lands between two waits is not missed.
final class Doorbell: Sendable {
    private let state = Mutex<(rung: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns at the next ring (at once if one is kept), after `timeout`,
    /// or when its task is cancelled. One waiter at a time.
    func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForRing() }
            group.addTask {
                // A ring of its own ends the wait; one that comes too late is
                // kept and makes the next wait return at once, which is harmless.
                if (try? await Task.sleep(for: timeout)) != nil { self.ring() }
            }
            await group.next()
            group.cancelAll()
            await group.next()
        }
    }

    /// Returns at the next ring, or when its task is cancelled: the wait's
    /// sleeper, cancelled with it, rings nobody, and a wait that outlived its
    /// cancellation held the delivery service (and whatever awaited it, a
    /// test run among them) for good.
    private func waitForRing() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.rung {
                        state.rung = false
                        return true
                    }
                    // Cancelled before the handler below could find a waiter.
                    if Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
