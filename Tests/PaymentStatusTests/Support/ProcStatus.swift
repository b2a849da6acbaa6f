import Foundation

/// A process's memory and sockets as /proc shows them (Linux).
struct ProcStatus {
    let rssKB: Int
    /// The high-water mark of resident memory (VmHWM): catches peaks between samples.
    let peakKB: Int
    /// Open file descriptors that are sockets.
    let sockets: Int

    init(pid: Int32) throws {
        let status = try ProcStatus.readFile("/proc/\(pid)/status")
        func kilobytes(_ field: String) throws -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
                  let value = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
            else { throw TestFailure("no \(field) in /proc/\(pid)/status") }
            return value
        }
        rssKB = try kilobytes("VmRSS")
        peakKB = try kilobytes("VmHWM")
        let descriptors = "/proc/\(pid)/fd"
        sockets = try FileManager.default.contentsOfDirectory(atPath: descriptors).filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: descriptors + "/" + $0))?.hasPrefix("socket:") ?? false
        }.count
    }

    /// A /proc file read to its end (they report a size of 0, and come a page at a time).
    static func readFile(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw TestFailure("cannot open \(path)") }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }
}
