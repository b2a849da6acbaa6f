import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One plain `.sql` file of a migrations folder. Files are applied in name
/// order, each once, and each file's SHA-256 is recorded, so that an applied
/// file edited afterwards stops start-up instead of silently diverging.
/// Each store applies its own folder: SQLite `migrations/`, PostgreSQL
/// `migrations/postgres/`.
struct MigrationFile: Sendable {
    var name: String
    var sql: String
    var checksum: String

    /// Reads the folder's `.sql` files ordered by name, so `0002_…` runs after `0001_…`.
    static func load(from directory: String) throws(MigrationError) -> [MigrationFile] {
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
            return MigrationFile(name: name, sql: String(decoding: data, as: UTF8.self), checksum: checksum)
        }
    }

    /// Checks the files against what a database recorded (name → checksum)
    /// and returns those still to apply, in order.
    static func pending(_ files: [MigrationFile], recorded: [String: String]) throws(MigrationError) -> [MigrationFile] {
        var pending: [MigrationFile] = []
        for file in files {
            guard let checksum = recorded[file.name] else {
                pending.append(file)
                continue
            }
            guard checksum == file.checksum else {
                throw MigrationError(
                    .checksumMismatch, name: file.name,
                    detail: "was applied with checksum \(checksum) but the file now has \(file.checksum)")
            }
        }
        return pending
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
