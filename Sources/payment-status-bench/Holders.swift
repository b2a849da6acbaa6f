import Foundation
import NIOCore

/// What a process holding streams hands back at the end.
struct HolderResult: Codable, Sendable {
    var firstOrder: Int
    var perOrder: Int
    var counters: StreamCounters
    /// Parse times of seq 2 and 3, two per stream (0: never arrived).
    var received: [UInt64]
}

/// A share of the streams: held in this process, or by a child copy of the
/// tool (`--processes`) that speaks a line protocol on its stdin and stdout.
protocol StreamHolder: AnyObject {
    var streamCount: Int { get }
    func startOpening(deadline: UInt64)
    func waitSettled() throws -> StreamCounters
    func status() throws -> StreamCounters
    func startFinishing(deadline: UInt64)
    func finishResult() throws -> HolderResult
}

final class LocalHolder: StreamHolder {
    let group: StreamGroup
    private var openDeadline: UInt64 = 0
    private var finishDeadline: UInt64 = 0

    init(group: StreamGroup) { self.group = group }

    var streamCount: Int { group.count }

    func startOpening(deadline: UInt64) {
        openDeadline = deadline
        group.startOpening()
    }

    func waitSettled() throws -> StreamCounters {
        group.waitUntilSettled(deadline: openDeadline)
        return group.counters
    }

    func status() throws -> StreamCounters { group.counters }

    func startFinishing(deadline: UInt64) { finishDeadline = deadline }

    func finishResult() throws -> HolderResult {
        group.waitForDeliveries(deadline: finishDeadline)
        let result = HolderResult(firstOrder: group.firstOrder, perOrder: group.perOrder, counters: group.counters, received: group.receiveTimes)
        group.closeAll()
        return result
    }
}

/// A child copy of this tool holding a sub-range of the orders' streams.
final class ChildHolder: StreamHolder {
    private let process: Process
    private let input: FileHandle
    private let reader: LineReader
    let streamCount: Int

    init(arguments: [String], firstOrder: Int, paths: [String], perOrder: Int) throws {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        input = stdin.fileHandleForWriting
        reader = LineReader(fd: stdout.fileHandleForReading.fileDescriptor)
        streamCount = paths.count * perOrder
        var text = "orders \(firstOrder) \(paths.count)\n"
        for path in paths { text += path + "\n" }
        try send(text)
        _ = try expect("ready")
    }

    func startOpening(deadline: UInt64) { try? send("open \(deadline)\n") }

    func waitSettled() throws -> StreamCounters {
        try JSONDecoder().decode(StreamCounters.self, from: Data(try expect("settled").utf8))
    }

    func status() throws -> StreamCounters {
        try send("status\n")
        return try JSONDecoder().decode(StreamCounters.self, from: Data(try expect("status").utf8))
    }

    func startFinishing(deadline: UInt64) { try? send("finish \(deadline)\n") }

    func finishResult() throws -> HolderResult {
        let result = try JSONDecoder().decode(HolderResult.self, from: Data(try expect("result").utf8))
        try? input.close()
        process.waitUntilExit()
        return result
    }

    func kill() {
        if process.isRunning { process.terminate() }
    }

    private func send(_ text: String) throws {
        try input.write(contentsOf: Data(text.utf8))
    }

    /// The rest of the next line, which must start with `word`.
    private func expect(_ word: String) throws -> String {
        guard let line = reader.readLine() else { throw BenchError("a child process ended early (expected '\(word)')") }
        guard line == word || line.hasPrefix(word + " ") else { throw BenchError("a child process said '\(line.prefix(200))', expected '\(word)'") }
        return String(line.dropFirst(word.count).drop(while: { $0 == " " }))
    }
}

/// The child side of the protocol: read the orders' stream paths, open the
/// streams when told, report, and hand back the parse times at the end.
enum ChildMain {
    static func run(
        eventLoopGroup: EventLoopGroup, server: ServerAddress, perOrder: Int, concurrency: Int, http2StreamsPerConnection: Int?,
        longPoll: Bool
    ) throws {
        let reader = LineReader(fd: 0)
        guard let header = reader.readLine() else { return }
        let fields = header.split(separator: " ")
        guard fields.count == 3, fields[0] == "orders", let firstOrder = Int(fields[1]), let count = Int(fields[2]) else {
            throw BenchError("child: bad header '\(header)'")
        }
        var paths: [String] = []
        paths.reserveCapacity(count)
        for _ in 0..<count {
            guard let path = reader.readLine() else { throw BenchError("child: input ended early") }
            paths.append(path)
        }
        let group = StreamGroup(
            eventLoopGroup: eventLoopGroup, server: server, firstOrder: firstOrder, paths: paths,
            perOrder: perOrder, concurrency: concurrency, http2StreamsPerConnection: http2StreamsPerConnection,
            longPoll: longPoll)
        emit("ready")
        let encoder = JSONEncoder()
        while let line = reader.readLine() {
            let words = line.split(separator: " ")
            switch words.first {
            case "open":
                group.startOpening()
                group.waitUntilSettled(deadline: words.count > 1 ? UInt64(words[1]) ?? 0 : 0)
                emit("settled " + String(decoding: try encoder.encode(group.counters), as: UTF8.self))
            case "status":
                emit("status " + String(decoding: try encoder.encode(group.counters), as: UTF8.self))
            case "finish":
                group.waitForDeliveries(deadline: words.count > 1 ? UInt64(words[1]) ?? 0 : 0)
                let result = HolderResult(firstOrder: firstOrder, perOrder: perOrder, counters: group.counters, received: group.receiveTimes)
                group.closeAll()
                emit("result " + String(decoding: try encoder.encode(result), as: UTF8.self))
                return
            default:
                throw BenchError("child: unknown command '\(line)'")
            }
        }
        group.closeAll()
    }
}
