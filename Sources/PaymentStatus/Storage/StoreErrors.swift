/// The errors a store raises, in terms the HTTP layer can answer without
/// knowing which database is underneath.

/// A stored value the code cannot read back, which only a hand edit of the database produces.
public enum StoreError: Error, Sendable {
    case corruptRow(String)
}

/// The database cannot serve the request now (unreachable, restarting, out
/// of space); the request may be retried. Answered 503.
public struct StoreUnavailable: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// A database driver's own error that its store knows how to classify: each
/// store says which of its driver's errors mean "unavailable now" (503,
/// retry) rather than a bug, so that nothing above the store needs the driver.
public protocol StoreClassifiedError: Error {
    /// True when the failure is the database's state, not the request's fault.
    var meansStoreUnavailable: Bool { get }
}
