import Synchronization
import Testing

@Suite("The tests' own bounds", .timeLimit(.minutes(1)))
struct TimeoutTests {
    /// The bound every `eventually` relies on holds over an operation that
    /// ignores its cancellation: a continuation nobody resumes.
    @Test func aTimeoutEndsAWaitThatIgnoresCancellation() async throws {
        let parked = Mutex<CheckedContinuation<Void, Never>?>(nil)
        await #expect(throws: TimedOut.self) {
            try await withTimeout(0.2, "a continuation nobody resumes") {
                await withCheckedContinuation { continuation in parked.withLock { $0 = continuation } }
            }
        }
        // Let the abandoned operation end, now that its test is done.
        parked.withLock { $0?.resume() }
    }
}
