import Synchronization

/// Send times of the transitions, per (order, seq 2 or 3): stamped by the
/// request loops just before the request is written, read once the phase is over.
final class SendTimes: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<UInt64>

    init(orders: Int) {
        slots = .allocate(capacity: max(orders * 2, 1))
        slots.initialize(repeating: 0)
    }

    deinit { slots.deallocate() }

    /// Each slot is written by one request loop only, before its request leaves.
    func stamp(order: Int, seq: Int, at nanos: UInt64) { slots[order * 2 + seq - 2] = nanos }
    func time(order: Int, seq: Int) -> UInt64 { slots[order * 2 + seq - 2] }
    var earliest: UInt64 { slots.lazy.filter { $0 > 0 }.min() ?? 0 }
}
