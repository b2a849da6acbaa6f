import Benchmark
import Foundation
import PaymentStatus
import Synchronization

/// A stream that only counts what it is handed: the hub's own cost, without the sockets.
final class CountingSink: StreamSink {
    let received = Atomic(0)
    func receive(_ signal: StreamSignal) { received.add(1, ordering: .relaxed) }
    func end() {}
}

/// The paths every transition takes: the rules and the durable append, the
/// SSE frame (encoded once per event), and the fan-out to an order's streams.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

    let event = PaymentEvent(
        orderID: "ord_8f3kD02LmQ9zXw1", seq: 3, status: .succeeded, previous: .processing, source: .webhook,
        eventID: "evt_1Qa9ZfLkq2", reason: "captured", at: .now())

    Benchmark("transition rules: every pair of statuses") { benchmark in
        for _ in benchmark.scaledIterations {
            for from in PaymentStatus.allCases {
                for to in PaymentStatus.allCases { blackHole(from.verdict(movingTo: to)) }
            }
        }
    }

    Benchmark("SSE framing: one status event") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(SSEFrame.status(event)) }
    }

    Benchmark("hub fan-out: one event to 100 streams of its order", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let hub = StreamHub()
        let subscriptions = (0..<100).map { _ in hub.subscribe(orderID: event.orderID, sink: CountingSink()) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { hub.publish(event) }
        benchmark.stopMeasurement()
        for subscription in subscriptions { subscription.cancel() }
    }

    Benchmark(
        "validate and append a transition (SQLite, WAL, synchronous=FULL)",
        configuration: .init(metrics: [.wallClock, .throughput], maxDuration: .seconds(5))
    ) { benchmark in
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ps-bench-\(UUID().uuidString)").path
        let migrations = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("migrations").path
        let store = try SQLiteStore(path: folder + "/bench.sqlite")
        try await store.migrate(with: SQLMigrator(directory: migrations))
        let ids = (0..<benchmark.scaledIterations.count).map { "b\($0)" }
        for id in ids {
            _ = try await store.createOrder(try OrderDraft(id: id, amount: 100, currency: "EUR", metadata: nil), id: id, at: .now())
        }
        benchmark.startMeasurement()
        for id in ids {
            blackHole(try await store.apply(StatusChange(orderID: id, status: .processing, source: .api), at: .now()))
        }
        benchmark.stopMeasurement()
        try store.close()
        try? FileManager.default.removeItem(atPath: folder)
    }
}
