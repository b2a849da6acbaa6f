import Crypto
import GRDB

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Applies the plain `.sql` files of a folder in name order, each once,
/// recording each file's SHA-256 so that an applied file that was edited
/// afterwards stops start-up instead of silently diverging.
public struct SQLMigrator: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// One migration file.
    struct Migration {
        var name: String
        var sql: String
        var checksum: String
    }

    /// Reads the folder; the files are ordered by name, so `0002_…` runs after `0001_…`.
    func load() throws(MigrationError) -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigrationError(.directoryUnreadable, name: directory, detail: "\(error)")
        }
        return try names.filter { $0.hasSuffix(".sql") }.sorted().map { name throws(MigrationError) in
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                throw MigrationError(.directoryUnreadable, name: path, detail: "cannot read the file")
            }
            let checksum = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            return Migration(name: name, sql: String(decoding: data, as: UTF8.self), checksum: checksum)
        }
    }

    /// Applies every pending file inside one immediate transaction, so a
    /// second process migrating the same database waits and then finds them applied.
    /// Returns the names of the files applied by this call.
    @discardableResult
    public func migrate(_ writer: any DatabaseWriter) async throws -> [String] {
        let migrations = try load()
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
                for migration in migrations {
                    if let checksum = recorded[migration.name] {
                        guard checksum == migration.checksum else {
                            throw MigrationError(
                                .checksumMismatch, name: migration.name,
                                detail: "was applied with checksum \(checksum) but the file now has \(migration.checksum)")
                        }
                        continue
                    }
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

/// Why migrations could not be applied; the message names the file.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    /// Kinds of failure, wrapped so that kinds can be added later.
    public struct Code: Equatable, Sendable {
        enum Base { case directoryUnreadable, checksumMismatch, failed }
        let base: Base
        public static let directoryUnreadable = Code(base: .directoryUnreadable)
        public static let checksumMismatch = Code(base: .checksumMismatch)
        public static let failed = Code(base: .failed)
    }

    public let code: Code
    /// The migration file (or folder) concerned.
    public let name: String
    public let detail: String

    init(_ code: Code, name: String, detail: String) {
        self.code = code
        self.name = name
        self.detail = detail
    }

    public var description: String {
        switch code.base {
        case .directoryUnreadable: "cannot read migrations from \(name): \(detail)"
        case .checksumMismatch: "migration \(name) changed after it was applied: it \(detail)"
        case .failed: "migration \(name) failed: \(detail)"
        }
    }
}
