import GRDB

/// Applies the plain `.sql` files of a folder to a SQLite database in name
/// order, each once (see `MigrationFile`).
public struct SQLMigrator: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// Applies every pending file inside one immediate transaction, so a
    /// second process migrating the same database waits and then finds them applied.
    /// Returns the names of the files applied by this call.
    @discardableResult
    public func migrate(_ writer: any DatabaseWriter) async throws -> [String] {
        let migrations = try MigrationFile.load(from: directory)
        return try await writer.writeWithoutTransaction { db in
            var applied: [String] = []
            try db.inTransaction(.immediate) {
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        name        TEXT PRIMARY KEY NOT NULL,
                        checksum    TEXT NOT NULL,
                        applied_at  INTEGER NOT NULL
                    ) WITHOUT ROWID
                    """)
                let recorded = try Dictionary(
                    uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT name, checksum FROM schema_migrations").map {
                        (row: Row) -> (String, String) in (row["name"], row["checksum"])
                    })
                for migration in try MigrationFile.pending(migrations, recorded: recorded) {
                    do {
                        try db.execute(sql: migration.sql)
                    } catch {
                        throw MigrationError(.failed, name: migration.name, detail: "\(error)")
                    }
                    try db.execute(
                        sql: "INSERT INTO schema_migrations (name, checksum, applied_at) VALUES (?, ?, ?)",
                        arguments: [migration.name, migration.checksum, Timestamp.now().millisecondsSince1970])
                    applied.append(migration.name)
                }
                return .commit
            }
            return applied
        }
    }
}
