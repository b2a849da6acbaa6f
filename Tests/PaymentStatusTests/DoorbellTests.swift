import Testing
@testable import PaymentStatus

/// Neither test awaits the waiting task itself: a wait that never returns
/// fails the test within seconds instead of holding the whole run.
@Suite("The delivery loop's doorbell", .timeLimit(.minutes(1)))
struct DoorbellTests {
    /// Waits on `bell` in a task of its own; the flag is set once the wait returned.
    static func waiting(on bell: Doorbell) -> (Task<Void, Never>, Flag) {
        let returned = Flag()
        let task = Task {
            await bell.wait(timeout: .seconds(3600))
            returned.set()
        }
        return (task, returned)
    }

    /// A wait whose task is cancelled returns, long before its timeout.
    @Test func aCancelledWaitReturns() async throws {
        let bell = Doorbell()
        let (task, returned) = Self.waiting(on: bell)
        try await Task.sleep(for: .milliseconds(100))
        #expect(!returned.isSet)
        task.cancel()
        try await eventually(5, "the cancelled wait to return") { returned.isSet }
    }

    /// A ring wakes the waiter; a ring while nobody waits is kept for the next wait.
    @Test func aRingWakesTheWaiterOrIsKeptForTheNext() async throws {
        let bell = Doorbell()
        let (_, woken) = Self.waiting(on: bell)
        try await Task.sleep(for: .milliseconds(100))
        bell.ring()
        try await eventually(5, "the waiter to be woken") { woken.isSet }
        bell.ring()
        let (_, kept) = Self.waiting(on: bell)
        try await eventually(5, "the kept ring to end the next wait") { kept.isSet }
    }
}
