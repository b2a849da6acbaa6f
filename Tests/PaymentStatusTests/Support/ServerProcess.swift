import Foundation
import Synchronization

/// The real `payment-status` binary, run as a child process the way an
/// operator runs it.
final class ServerProcess: Sendable {
    /// The executable `swift build` put beside the test bundle.
    static let executable: String = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("payment-status").path,
            URL(fileURLWithPath: TestService.migrations).deletingLastPathComponent().appendingPathComponent(".build/debug/payment-status").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }()

    private let process: Process
    private let output = OutputBuffer()

    /// Starts `payment-status <arguments>` with `environment` (and PATH only
    /// from ours: nothing else leaks in), in `directory`.
    init(_ arguments: [String], environment: [String: String], directory: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments
        process.environment = environment.merging(["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"]) { a, _ in a }
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = self.output
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                output.markEnded()
                handle.readabilityHandler = nil
            } else {
                output.append(data)
            }
        }
        try process.run()
    }

    /// Everything printed so far, stdout and stderr together.
    var printed: String { output.text }

    var isRunning: Bool { process.isRunning }
    var pid: Int32 { process.processIdentifier }
    var exitCode: Int32 { process.terminationStatus }

    /// The port from the "listening on" log line, once the server printed it.
    func port(within seconds: Double = 30) async throws -> Int {
        try await eventually(seconds, "the server to listen") { [self] in
            self.listeningPort != nil || !self.isRunning
        }
        guard let port = listeningPort else { throw TestFailure("the server exited: \(printed)") }
        return port
    }

    private var listeningPort: Int? {
        guard let range = printed.range(of: "listening on 127.0.0.1:") else { return nil }
        return Int(printed[range.upperBound...].prefix(while: \.isNumber))
    }

    /// Sends SIGTERM, as an orchestrator does.
    func terminate() { process.terminate() }

    func kill() { Foundation.kill(process.processIdentifier, SIGKILL) }

    /// Waits for the process to exit and returns its status.
    @discardableResult
    func waitForExit(within seconds: Double = 30) async throws -> Int32 {
        try await eventually(seconds, "the process to exit") { [self] in !self.isRunning }
        // What it printed last may still be in the pipe: read up to its end
        // (a child it started could hold the pipe open, so not for ever).
        try? await eventually(2, "the output to end") { [output] in output.ended }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
}

/// What a child process printed, appended from the pipe's reader thread.
final class OutputBuffer: Sendable {
    private let storage = Mutex((text: "", ended: false))

    func append(_ data: Data) {
        storage.withLock { $0.text += String(decoding: data, as: UTF8.self) }
    }

    /// The pipe reached its end: everything printed has been read.
    func markEnded() { storage.withLock { $0.ended = true } }

    var text: String { storage.withLock { $0.text } }
    var ended: Bool { storage.withLock { $0.ended } }
}
