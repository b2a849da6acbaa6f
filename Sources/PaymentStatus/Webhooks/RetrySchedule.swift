/// When a message that was not delivered is tried again: the first attempt
/// goes at once, then one retry after each delay, then the message fails.
/// Each delay is stretched or shrunk by up to `jitter` (a fraction), so that
/// the messages of an endpoint that came back do not all return at once.
public struct RetrySchedule: Sendable, Equatable {
    public var delays: [Duration]
    public var jitter: Double

    /// About 5 s, 30 s, 2 min, 10 min, 1 h, 3 h, 6 h, 12 h (the contract's).
    public static let standard = RetrySchedule(
        delays: [5, 30, 120, 600, 3600, 10_800, 21_600, 43_200].map { .seconds($0) }, jitter: 0.1)

    public init(delays: [Duration], jitter: Double = 0.1) {
        self.delays = delays
        self.jitter = jitter
    }

    /// Every attempt the schedule allows: the first and one per delay.
    public var attempts: Int { delays.count + 1 }

    /// `PAYMENT_WEBHOOK_RETRY_SCHEDULE`: comma-separated seconds, fractions allowed.
    public init(parsing text: String, from setting: String) throws(ConfigurationError) {
        var delays: [Duration] = []
        for part in AppConfiguration.list(text) {
            guard let seconds = Double(part), seconds >= 0, seconds <= 7 * 86_400 else {
                throw ConfigurationError(
                    setting: setting, message: "must be comma-separated numbers of seconds (0 to 604800), got '\(text)'")
            }
            delays.append(.milliseconds(Int64((seconds * 1000).rounded())))
        }
        self.init(delays: delays)
    }

    /// The verdict after a failed attempt: `attemptsMade` counts it, and the
    /// message fails once it reaches `allowed` (the schedule's attempts unless
    /// a manual retry said otherwise).
    public func verdictAfterFailure(attemptsMade: Int, allowed: Int?, now: Timestamp) -> MessageVerdict {
        let limit = allowed ?? attempts
        guard attemptsMade < limit, attemptsMade >= 1, !delays.isEmpty else { return .failed }
        let delay = delays[min(attemptsMade - 1, delays.count - 1)]
        let factor = jitter > 0 ? Double.random(in: (1 - jitter)...(1 + jitter)) : 1
        return .retry(at: now.adding(delay * factor))
    }
}
