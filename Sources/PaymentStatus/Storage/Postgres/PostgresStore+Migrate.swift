import PostgresNIO

extension PostgresStore {
    /// PostgreSQL's files are the `postgres` subfolder of the migrations folder.
    @discardableResult
    public func migrate(migrations: String) async throws -> [String] {
        try await migrate(directory: migrations + "/postgres")
    }

    /// Applies every pending file of `directory` in one transaction. An
    /// advisory lock serialises instances starting together: the second
    /// waits, then finds the files applied.
    @discardableResult
    public func migrate(directory: String) async throws -> [String] {
        let files = try MigrationFile.load(from: directory)
        return try await transaction(answerWithin: nil) { [logger] connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    name        TEXT PRIMARY KEY,
                    checksum    TEXT NOT NULL,
                    applied_at  BIGINT NOT NULL
                )
                """, logger: logger)
            var recorded: [String: String] = [:]
            for row in try await connection.query("SELECT name, checksum FROM schema_migrations", logger: logger).collect() {
                let (name, checksum) = try row.decode((String, String).self)
                recorded[name] = checksum
            }
            var applied: [String] = []
            for file in try MigrationFile.pending(files, recorded: recorded) {
                do {
                    for statement in SQLScript.statements(file.sql) {
                        _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
                    }
                } catch {
                    throw MigrationError(.failed, name: file.name, detail: "\(error)")
                }
                try await connection.query("""
                    INSERT INTO schema_migrations (name, checksum, applied_at)
                    VALUES (\(file.name), \(file.checksum), \(Timestamp.now().millisecondsSince1970))
                    """, logger: logger)
                applied.append(file.name)
            }
            return applied
        }
    }

    /// An arbitrary constant every instance agrees on ("paystat" in ASCII).
    static let migrationLock: Int64 = 0x7061_7973_7461_74
}
