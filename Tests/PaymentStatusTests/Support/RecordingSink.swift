import Synchronization
@testable import PaymentStatus

/// A stream that records what the bus hands it.
final class RecordingSink: StreamSink {
    private let state = Mutex<(signals: [StreamSignal], ended: Bool)>(([], false))

    func receive(_ signal: StreamSignal) { state.withLock { $0.signals.append(signal) } }
    func end() { state.withLock { $0.ended = true } }

    var signals: [StreamSignal] { state.withLock { $0.signals } }
    var ended: Bool { state.withLock { $0.ended } }
    var events: [PaymentEvent] { signals.compactMap { if case .event(let event, _, _) = $0 { event } else { nil } } }
    var seqs: [Int] { events.map(\.seq) }
}
