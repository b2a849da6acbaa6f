/// Where a payment stands. `succeeded` and `failed` are final: nothing leaves them.
public enum PaymentStatus: String, Sendable, CaseIterable, Codable {
    case initiated
    case processing
    case succeeded
    case failed

    /// A final status ends the order's history and its streams.
    public var isTerminal: Bool {
        switch self {
        case .initiated, .processing: false
        case .succeeded, .failed: true
        }
    }

    /// How far along a payment is; both terminal states share the last stage,
    /// which is what lets a late webhook be told apart from a contradicting one.
    var stage: Int {
        switch self {
        case .initiated: 0
        case .processing: 1
        case .succeeded, .failed: 2
        }
    }

    /// Judges a move from `self` to `next` against the transition table:
    /// `initiated → processing → succeeded | failed`, plus
    /// `initiated → succeeded | failed`.
    public func verdict(movingTo next: PaymentStatus) -> TransitionVerdict {
        if next.stage > stage { return .allowed }
        if isTerminal && next.isTerminal && next != self { return .conflictingTerminal }
        return .alreadyPassed
    }
}

/// The answer of the transition table for one proposed move.
public enum TransitionVerdict: Sendable, Equatable {
    /// The table allows the move.
    case allowed
    /// The order is already at or past the proposed status (a late or repeated report).
    case alreadyPassed
    /// The order is terminal and the proposal is the other terminal state.
    case conflictingTerminal
}
