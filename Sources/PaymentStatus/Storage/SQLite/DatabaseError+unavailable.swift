import GRDB

/// SQLite's result codes that mean "the database cannot write now", not
/// "this request is wrong": answered 503 with `Retry-After`.
extension DatabaseError: StoreClassifiedError {
    public var meansStoreUnavailable: Bool {
        switch resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_ABORT: true
        default: false
        }
    }
}
