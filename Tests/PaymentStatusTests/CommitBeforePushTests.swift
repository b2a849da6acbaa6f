import Foundation
import GRDB
import Synchronization
import Testing
@testable import PaymentStatus

/// "No stream sees an event before its commit": a stream is handed each
/// event on the committing thread, and at that very moment another
/// connection to the database must already see the event's row. Moving the
/// hand-over before the commit (in the group commit, the store or the write
/// path) makes the row invisible when the stream receives it.
@Suite("Events reach streams only after their commit", .timeLimit(.minutes(2)))
struct CommitBeforePushTests {
    /// A stream that, as each event arrives, looks for it through a
    /// connection of its own: in WAL mode that one sees committed rows only.
    final class CommittedChecker: StreamSink {
        let reader: DatabaseQueue
        private let state = Mutex<(seen: [Int], uncommitted: [Int])>(([], []))

        init(path: String) throws {
            var configuration = Configuration()
            configuration.readonly = true
            reader = try DatabaseQueue(path: path, configuration: configuration)
        }

        func receive(_ signal: StreamSignal) {
            guard case .event(let event, _, _) = signal else { return }
            let stored = (try? reader.read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE order_id = ? AND seq = ?", arguments: [event.orderID, event.seq])
            }) ?? 0
            state.withLock {
                $0.seen.append(event.seq)
                if stored != 1 { $0.uncommitted.append(event.seq) }
            }
        }

        func end() {}

        var seen: [Int] { state.withLock { $0.seen } }
        var uncommitted: [Int] { state.withLock { $0.uncommitted } }
    }

    @Test func everyEventAStreamReceivesIsAlreadyCommitted() async throws {
        try await TestService().withLiveServer { live, services in
            let orders = (0..<20).map { "c\($0)" }
            for order in orders { try await live.client.createOrder(id: order) }
            guard case .sqlite(let path) = services.configuration.database else { Issue.record("SQLite expected"); return }
            let checker = try CommittedChecker(path: path)
            let registrations = orders.map { services.hub.subscribe(orderID: $0, sink: checker) }
            // Concurrent writes, so that the group commit carries several per transaction.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for order in orders {
                    group.addTask {
                        let processing = try await live.client.transition(order, to: "processing")
                        let succeeded = try await live.client.transition(order, to: "succeeded")
                        #expect(processing.status == .ok && succeeded.status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            try await eventually(10, "every event to reach the stream") { checker.seen.count == orders.count * 2 }
            #expect(checker.uncommitted.isEmpty, "events a stream received before their commit: \(checker.uncommitted.count)")
            for registration in registrations { registration.cancel() }
        }
    }
}
