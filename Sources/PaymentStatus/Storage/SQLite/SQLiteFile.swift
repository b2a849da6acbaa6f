#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain file operations the operator commands need around a SQLite file.
public enum SQLiteFile {
    /// Throws unless `path` is an existing SQLite database. Opening a path
    /// that does not exist would create an empty database there: look first.
    public static func requireDatabase(at path: String) throws(SQLiteFileError) {
        guard FileManager.default.fileExists(atPath: path) else { throw SQLiteFileError("there is no database at \(path)") }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw SQLiteFileError("cannot read \(path): errno \(errno)") }
        defer { close(descriptor) }
        var header = [UInt8](repeating: 0, count: 16)
        let count = read(descriptor, &header, 16)
        guard count == 16, header == Array("SQLite format 3\u{0}".utf8) else {
            throw SQLiteFileError("\(path) is not a SQLite database")
        }
    }

    /// Flushes the file (or folder) at `path` to the disk.
    public static func sync(_ path: String) throws(SQLiteFileError) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw SQLiteFileError("cannot open \(path) to flush it: errno \(errno)") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw SQLiteFileError("fsync of \(path) failed: errno \(errno)") }
    }

    /// Moves `source` to `target` in one step (replacing `target`), then
    /// flushes their folder so that the new name survives a power cut too.
    public static func replace(_ target: String, with source: String) throws(SQLiteFileError) {
        guard rename(source, target) == 0 else { throw SQLiteFileError("cannot rename \(source) to \(target): errno \(errno)") }
        try sync(folder(of: target))
    }

    /// The folder a path is in ("." for a bare name).
    public static func folder(of path: String) -> String {
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return folder.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : folder
    }

    /// The size of the file in bytes, 0 when it cannot be read.
    public static func size(_ path: String) -> Int64 {
        var status = stat()
        return stat(path, &status) == 0 ? Int64(status.st_size) : 0
    }

    /// Whether `path` is an existing folder.
    static func isFolder(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & mode_t(S_IFMT)) == mode_t(S_IFDIR)
    }

    /// The same file under both paths (a link, or `./x` and `x`)?
    static func isSameFile(_ a: String, _ b: String) -> Bool {
        var first = stat()
        var second = stat()
        guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }
}

/// A file the operator commands cannot use; the message says why.
public struct SQLiteFileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
