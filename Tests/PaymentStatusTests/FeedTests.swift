import Testing

/// The merchant's feed suites, one after the other: several of them load the
/// shared PostgreSQL test server (many commits, transactions held open) and
/// would crowd the other suites' timing if they all ran at once.
@Suite("The merchant's event feed", .serialized, .timeLimit(.minutes(5)))
struct FeedTests {}
