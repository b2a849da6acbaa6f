import NIOCore

extension Duration {
    /// The whole nanoseconds in this duration (sub-nanosecond parts dropped),
    /// for the APIs that count in them: NIO's timers, metrics' recorders.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

extension TimeAmount {
    /// The same length of time as a Swift `Duration`.
    init(_ duration: Duration) {
        self = .nanoseconds(duration.nanoseconds)
    }
}
