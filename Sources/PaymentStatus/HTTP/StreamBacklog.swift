/// What `StreamLifecycle` needs to know of an event: its place in its
/// order's sequence, and whether the stream ends with it.
protocol SequencedEvent {
    var seq: Int { get }
    /// The order's terminal event: nothing follows it.
    var endsStream: Bool { get }
}

/// A stream's progress through its order's events: the last `seq` sent,
/// and the events received but not sent yet, in `seq` order, each once.
///
/// Why a buffer: events arrive while the route still reads the history,
/// and publication can overtake an earlier commit; a client must get them
/// in `seq` order with no gap and no duplicate.
struct StreamBacklog<Event: SequencedEvent> {
    /// The last `seq` sent (or, before the history, the client's `Last-Event-ID`).
    private(set) var lastSent: Int
    /// Later than `lastSent`, ascending, no `seq` twice.
    private var waiting: [Event] = []

    /// A backlog whose client has every event up to `lastSent`.
    init(lastSent: Int) {
        self.lastSent = lastSent
    }

    /// What comes next.
    enum Next {
        /// The event right after `lastSent`, now counted as sent.
        case event(Event)
        /// Events wait, but the one right after `lastSent` is missing.
        case gap
        /// Nothing waits.
        case nothing
    }

    /// Keeps `event` for later, unless it was sent already or waits already.
    mutating func add(_ event: Event) {
        guard event.seq > lastSent else { return }
        let index = waiting.firstIndex { $0.seq >= event.seq } ?? waiting.endIndex
        guard index == waiting.endIndex || waiting[index].seq != event.seq else { return }
        waiting.insert(event, at: index)
    }

    /// Counts `event` as sent, whatever came before it: the history the
    /// route read starts where the client is, not necessarily right after
    /// `lastSent` (without `Last-Event-ID` it is the newest event alone).
    mutating func markSent(_ event: Event) {
        lastSent = event.seq
        waiting.removeAll { $0.seq <= lastSent }
    }

    /// Takes the event right after `lastSent`, if it waits.
    mutating func next() -> Next {
        guard let first = waiting.first else { return .nothing }
        guard first.seq == lastSent + 1 else { return .gap }
        waiting.removeFirst()
        lastSent = first.seq
        return .event(first)
    }

    /// Takes every event that follows `lastSent` without a gap.
    mutating func nextRun() -> [Event] {
        var run: [Event] = []
        while case .event(let event) = next() { run.append(event) }
        return run
    }

    /// Whether anything waits (after `nextRun`: behind a gap).
    var isEmpty: Bool { waiting.isEmpty }
}

extension StreamBacklog: Equatable where Event: Equatable {}
