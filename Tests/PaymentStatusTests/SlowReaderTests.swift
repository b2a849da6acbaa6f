import Foundation
import NIOCore
import Synchronization
import Testing
@testable import PaymentStatus

#if canImport(Glibc)
import Glibc
#endif

/// Clients that stop reading, against the real binary: the server's memory
/// stays bounded, other streams are served as usual, and the server closes
/// the stalled connections itself. Figures come from /proc (Linux only).
@Suite("Slow and stalled readers", .serialized, .timeLimit(.minutes(2)))
struct SlowReaderTests {
    static let stalledCount = 200
    static let heartbeat = "0.02"
    static let lifetimeSeconds = 8
    static let idleTimeoutSeconds = 3
    static let streamSecret = "slow-reader-stream-secret"
    static let credentials = Credentials(apiToken: "tok", streamSecret: streamSecret, webhookSecrets: [])

    static func path(_ order: String) -> String {
        "/v1/orders/\(order)/events?token=\(credentials.streamToken(forOrder: order))"
    }

    /// Clients that send their request and then never read: the server keeps
    /// writing heartbeats and events to them, unread, until each stream's
    /// lifetime ends it; the idle timeout then closes the connection. The
    /// server's memory meanwhile stays bounded and a client that reads is
    /// served as usual. Without a bound on a stalled stream's life the
    /// connections stay open and the test fails.
    ///
    /// At these rates a stalled stream's bytes fit in the kernel's socket
    /// buffers (megabytes on loopback) for the whole of its lifetime, so the
    /// server's writes never block and the hub's fall-behind limit is not what
    /// ends these streams: their lifetime is.
    /// The figures come from /proc and the stalled clients from Glibc's
    /// sockets: elsewhere the test is reported as skipped, not passed.
    static let canMeasure: Bool = {
        #if canImport(Glibc)
        FileManager.default.fileExists(atPath: "/proc/self/status")
        #else
        false
        #endif
    }()

    @Test(.enabled(if: SlowReaderTests.canMeasure, "needs Linux: /proc and Glibc sockets"))
    func clientsThatStopReadingAreClosedWithBoundedMemoryAndOtherStreamsUnaffected() async throws {
        #if canImport(Glibc)
        let folder = try BinaryTests.Folder()
        defer { folder.remove() }
        // Fast heartbeats, so every stalled stream always has more to write.
        let server = try BinaryTests.serve(
            folder,
            [
                "PAYMENT_API_TOKEN": "tok", "PAYMENT_STREAM_SECRET": Self.streamSecret,
                "PAYMENT_IDLE_TIMEOUT_SECONDS": String(Self.idleTimeoutSeconds), "LOG_LEVEL": "notice",
            ],
            ["--heartbeat-seconds", Self.heartbeat, "--stream-timeout-seconds", String(Self.lifetimeSeconds)])
        let port = try await server.port()
        let pid = server.pid

        let stalledOrders = (0..<20).map { "stalled-\($0)" }
        for order in stalledOrders + ["watched"] {
            let created = try await BinaryTests.request(
                port, "/v1/orders", method: .post, token: "tok", json: #"{"id":"\#(order)","amount":5,"currency":"EUR"}"#)
            #expect(created.status == .created)
        }
        #expect(try await Self.openStreams(port) == 0)
        let baseline = try ProcStatus(pid: pid)

        // Clients that send their request and never read a byte of the answer,
        // opened in batches so that each is answered before the next arrives.
        let opened = ContinuousClock.now
        var stalled: [StalledReader] = []
        var reopened = 0
        for batch in 0..<(Self.stalledCount / 50) {
            let paths = (0..<50).map { Self.path(stalledOrders[(batch * 50 + $0) % stalledOrders.count]) }
            var readers = try paths.map { try StalledReader(port: port, path: $0) }
            // Answered: the response head waits, unread, in the client's socket. A
            // connection whose request an overloaded server did not read within the
            // idle timeout is closed unanswered; that client connects again.
            let deadline = ContinuousClock.now + .seconds(30)
            while !readers.allSatisfy({ $0.hasResponseWaiting() }) {
                guard ContinuousClock.now < deadline else { throw TimedOut(what: "the server to answer the stalled clients") }
                for index in readers.indices where readers[index].wasClosedUnanswered() && reopened < 100 {
                    readers[index] = try StalledReader(port: port, path: paths[index])
                    reopened += 1
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            stalled += readers
        }
        let clientPorts = Set(stalled.map(\.localPort))
        // Events for the stalled orders too (not terminal: the streams stay open).
        for order in stalledOrders {
            #expect(try await BinaryTests.request(
                port, "/v1/orders/\(order)/transitions", method: .post, token: "tok", json: #"{"status":"processing"}"#).status == .ok)
        }
        let heldWhileStalled = try Self.serverHeld(pid: pid, port: port, clients: clientPorts)
        let whileStalled = try ProcStatus(pid: pid)

        // Meanwhile a client that reads gets its order's transitions as usual.
        let reading = try await SSEConnection.open(port: port, path: Self.path("watched"))
        #expect(try await reading.head().status == .ok)
        let current = try LiveStreamTests.seq(try await reading.nextEvent())
        let posted = ContinuousClock.now
        for status in ["processing", "succeeded"] {
            #expect(try await BinaryTests.request(
                port, "/v1/orders/watched/transitions", method: .post, token: "tok", json: #"{"status":"\#(status)"}"#).status == .ok)
        }
        let watched = try await Self.readUntilTerminal("watched", port: port, on: reading, seen: [current])
        let watchedAfter = ContinuousClock.now - posted
        #expect(watched.seqs == [1, 2, 3], "the reading client saw \(watched.seqs)")

        // The server lets go of every stalled connection on its own.
        let mostUnsent = PeakValue()
        try await eventually(45, "the server to close every stalled connection") {
            let held = try Self.serverHeld(pid: pid, port: port, clients: clientPorts)
            mostUnsent.record(held.map(\.unsent).reduce(0, +))
            return held.isEmpty
        }
        let closedAfter = ContinuousClock.now - opened
        try await eventually(10, "the open-stream gauge to fall back") { try await Self.openStreams(port) == 0 }
        // Every socket the stalled clients cost is given back.
        try await eventually(10, "the server's sockets to fall back to before") { try ProcStatus(pid: pid).sockets <= baseline.sockets }
        let after = try ProcStatus(pid: pid)

        // Read now, at last: each stalled client finds its stream closed by the
        // server. (What the server queued before closing comes first; the kernel
        // delivers it once the window opens, which a long zero-window wait can delay.)
        let drainStarted = ContinuousClock.now
        let drained = StalledReader.drain(stalled, within: 60)
        let drainedAfter = ContinuousClock.now - drainStarted
        var endings: [StalledReader.Ending: Int] = [:]
        var completeResponses = 0
        for (bytes, ending) in drained {
            endings[ending, default: 0] += 1
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200"), "a stalled client got: \(text.prefix(120))")
            if text.hasSuffix("\r\n0\r\n\r\n") { completeResponses += 1 }
        }
        let delivered = drained.map(\.bytes.count).reduce(0, +)
        #expect(endings[.timedOut, default: 0] == 0, "connections the server did not close: \(endings)")

        let growth = after.peakKB - baseline.peakKB
        print("""
            slow readers: \(Self.stalledCount) stalled clients (\(reopened) reconnected before being answered); heartbeat \(Self.heartbeat) s, stream lifetime \(Self.lifetimeSeconds) s, idle timeout \(Self.idleTimeoutSeconds) s
              server RSS: baseline \(baseline.rssKB) kB, stalled streams open \(whileStalled.rssKB) kB, after they closed \(after.rssKB) kB
              server peak RSS growth \(growth) kB (\(growth / Self.stalledCount) kB per stalled client); open sockets \(baseline.sockets) -> \(whileStalled.sockets) -> \(after.sockets)
              stalled connections held by the server once all were answered: \(heldWhileStalled.count); bytes queued unsent to them: \(heldWhileStalled.map(\.unsent).reduce(0, +)) then, at most \(mostUnsent.value) later
              all \(Self.stalledCount) closed by the server \(closedAfter) after the first was opened
              on reading at last: \(endings.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: ", ")); \(completeResponses) complete responses; \(delivered) bytes in all, drained in \(drainedAfter)
              the reading client saw seqs \(watched.seqs) over \(watched.connections) connection(s), \(watchedAfter) after the transitions were posted
            """)
        #expect(growth < 64 * 1024, "server peak RSS grew by \(growth) kB with \(Self.stalledCount) stalled clients")
        // Every stream the server ended by itself ended properly, with the last
        // chunk: a connection that closed in order without it was cut mid-stream.
        #expect(completeResponses == endings[.eof, default: 0], "\(completeResponses) complete of \(endings[.eof, default: 0]) closed in order")
        #expect(server.isRunning)
        server.terminate()
        #expect(try await server.waitForExit() == 0)
        #else
        Issue.record("runs only where canMeasure holds")
        #endif
    }

    /// The open-stream gauge from `/metrics`.
    static func openStreams(_ port: Int) async throws -> Int {
        let body = String(buffer: try await BinaryTests.request(port, "/metrics").body ?? ByteBuffer())
        guard let line = body.split(separator: "\n").first(where: { $0.hasPrefix("payment_status_open_streams ") }),
              let value = Double(line.split(separator: " ").last ?? "")
        else { throw TestFailure("no open-stream gauge in /metrics") }
        return Int(value)
    }

    /// Reads on from `stream` as a browser does, resuming by `Last-Event-ID`
    /// whenever the server ends the stream, until the terminal event (seq 3).
    static func readUntilTerminal(
        _ order: String, port: Int, on stream: SSEConnection, seen: [Int]
    ) async throws -> (seqs: [Int], connections: Int) {
        var seqs = seen
        var stream = stream
        var connections = 1
        while true {
            while seqs.last != 3, let event = try await stream.nextEvent(within: 20) {
                seqs.append(try LiveStreamTests.seq(event))
            }
            await stream.close()
            guard seqs.last != 3, connections < 20 else { break }
            let last = seqs.last.map(String.init) ?? "0"
            stream = try await SSEConnection.open(port: port, path: path(order), headers: [("Last-Event-ID", last)])
            connections += 1
            guard try await stream.head().status == .ok else { break }
        }
        return (seqs, connections)
    }

    /// The stalled clients' connections the server process still holds open,
    /// with the bytes queued unsent on each (from /proc/net/tcp).
    static func serverHeld(pid: Int32, port: Int, clients: Set<Int>) throws -> [(inode: String, unsent: Int)] {
        let descriptors = "/proc/\(pid)/fd"
        var inodes = Set<String>()
        for name in try FileManager.default.contentsOfDirectory(atPath: descriptors) {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: descriptors + "/" + name),
                  target.hasPrefix("socket:[")
            else { continue }
            inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
        }
        func portOf(_ address: Substring) -> Int? { address.split(separator: ":").last.flatMap { Int($0, radix: 16) } }
        var held: [(inode: String, unsent: Int)] = []
        for line in try ProcStatus.readFile("/proc/net/tcp").split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 9, portOf(fields[1]) == port, let remote = portOf(fields[2]), clients.contains(remote),
                  inodes.contains(String(fields[9]))
            else { continue }
            held.append((String(fields[9]), fields[4].split(separator: ":").first.flatMap { Int($0, radix: 16) } ?? 0))
        }
        return held
    }
}

/// The largest value recorded.
final class PeakValue: Sendable {
    private let storage = Mutex(0)
    func record(_ value: Int) { storage.withLock { $0 = max($0, value) } }
    var value: Int { storage.withLock { $0 } }
}

/// Memory and sockets of a process, from /proc.

#if canImport(Glibc)
/// A client that sends a stream request and then does not read: a blocking
/// socket with a small receive buffer, left untouched until `drain`.
final class StalledReader: Sendable {
    enum Ending: String { case eof, reset, timedOut }

    private let fd: Int32
    let localPort: Int

    init(port: Int, path: String, receiveBuffer: Int32 = 4096) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        // Before connecting, so that the window the client offers is small from the start.
        var size = receiveBuffer
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { Glibc.close(fd); throw TestFailure("connect() failed: errno \(errno)") }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { Glibc.close(fd); throw TestFailure("send() failed: errno \(errno)") }
            sent += n
        }
        self.fd = fd
        localPort = Int(UInt16(bigEndian: local.sin_port))
    }

    /// The first bytes waiting in the socket, looked at and left there: the window stays shut.
    func peek(_ count: Int = 12) -> String {
        var head = [UInt8](repeating: 0, count: count)
        let n = head.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_PEEK | MSG_DONTWAIT)) }
        return String(decoding: head.prefix(max(n, 0)), as: UTF8.self)
    }

    /// Whether the response has started arriving.
    func hasResponseWaiting() -> Bool { peek().hasPrefix("HTTP/1.1 200") }

    /// Whether the server closed the connection before sending anything.
    func wasClosedUnanswered() -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// Reads what each reader's server sent, all at once, until the server
    /// closes each connection; gives up on the rest (`timedOut`) after `seconds`.
    static func drain(_ readers: [StalledReader], within seconds: Int) -> [(bytes: [UInt8], ending: Ending)] {
        var results = readers.map { _ in (bytes: [UInt8](), ending: Ending.timedOut) }
        var open = Set(readers.indices)
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !open.isEmpty, ContinuousClock.now < deadline {
            let watched = open.sorted()
            var polls = watched.map { pollfd(fd: readers[$0].fd, events: Int16(POLLIN), revents: 0) }
            guard poll(&polls, nfds_t(polls.count), 200) > 0 else { continue }
            for (index, polled) in zip(watched, polls) where polled.revents != 0 {
                while true {
                    let n = chunk.withUnsafeMutableBytes { recv(readers[index].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if n > 0 { results[index].bytes += chunk[0..<n]; continue }
                    if n == 0 { results[index].ending = .eof; open.remove(index) }
                    if n < 0, errno == ECONNRESET { results[index].ending = .reset; open.remove(index) }
                    break
                }
            }
        }
        return results
    }

    deinit { Glibc.close(fd) }
}
#endif
