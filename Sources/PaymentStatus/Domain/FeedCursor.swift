/// A place in the merchant's event feed: the feed position of one event.
/// Clients see it as an opaque string (`"<transaction>-<position>"`, both
/// unsigned decimals without leading zeros) and only hand it back.
///
/// It is made of what the store keeps with each event, never of anything
/// held in memory, so a cursor stays valid across restarts of any instance
/// and across schema migrations (later migrations keep these columns and
/// their order). SQLite: `transaction` is 0 and `position` the event's
/// `position`; PostgreSQL: the event's `feed_xid` and `feed_id` (see
/// `PostgresStore+Feed.swift`). Positions order the feed: the feed is every
/// event in increasing cursor order.
public struct FeedCursor: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The transaction the position belongs to (PostgreSQL's `xid8`); 0 on SQLite.
    public var transaction: UInt64
    /// The position within that transaction's range; at least 1 for a stored event.
    public var position: Int64

    public init(transaction: UInt64, position: Int64) {
        self.transaction = transaction
        self.position = position
    }

    public static func < (a: FeedCursor, b: FeedCursor) -> Bool {
        (a.transaction, a.position) < (b.transaction, b.position)
    }

    /// The text form handed to clients.
    public var description: String { "\(transaction)-\(position)" }

    /// Parses the text form; anything else (other separators, signs, leading
    /// zeros, numbers out of range) is malformed, so that each cursor has one spelling.
    public init(parsing text: some StringProtocol) throws(MalformedCursor) {
        let text = String(text)
        let parts = text.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 2, let transaction = Self.canonical(parts[0], as: UInt64.self),
            let position = Self.canonical(parts[1], as: Int64.self), position >= 0
        else { throw MalformedCursor() }
        self.init(transaction: transaction, position: position)
    }

    /// Digits only, no leading zero but for "0" itself, within `T`'s range.
    private static func canonical<T: FixedWidthInteger>(_ digits: Substring, as: T.Type) -> T? {
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            digits == "0" || digits.first != "0"
        else { return nil }
        return T(digits)
    }
}

/// A cursor that this feed never handed out: not of the cursor form, or of
/// another kind of store.
public struct MalformedCursor: Error, Sendable, Equatable, CustomStringConvertible {
    public init() {}
    public var description: String { "not a cursor of this feed" }
}

/// One entry of the feed: an event and its place.
public struct FeedEvent: Sendable, Equatable {
    public var cursor: FeedCursor
    public var event: PaymentEvent

    public init(cursor: FeedCursor, event: PaymentEvent) {
        self.cursor = cursor
        self.event = event
    }
}

/// One read of the feed.
public struct FeedPage: Sendable, Equatable {
    /// The events after the cursor asked for, in feed order.
    public var events: [FeedEvent]
    /// More events can be read right now after the last one.
    public var hasMore: Bool
    /// Events after this page have committed but cannot be handed out yet,
    /// because a transaction that began before theirs is still open
    /// (PostgreSQL only): read again shortly.
    public var held: Bool

    public init(events: [FeedEvent], hasMore: Bool, held: Bool = false) {
        self.events = events
        self.hasMore = hasMore
        self.held = held
    }
}
