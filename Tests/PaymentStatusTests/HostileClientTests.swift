import Foundation
import Testing
@testable import PaymentStatus

/// Hostile clients, round two: each attack of the probe reproduced over raw
/// sockets against the real binary.
@Suite("Hostile clients against the binary", .serialized, .timeLimit(.minutes(3)))
struct HostileClientTests {
    static let environment = ["PAYMENT_API_TOKEN": "tok", "PAYMENT_WEBHOOK_SECRET": "whsec", "LOG_LEVEL": "notice"]

    static func withServer(
        _ extra: [String: String] = [:], _ body: (ServerProcess, Int) async throws -> Void
    ) async throws {
        let folder = try BinaryTests.Folder()
        defer { folder.remove() }
        let server = try BinaryTests.serve(folder, Self.environment.merging(extra) { _, new in new })
        let port = try await server.port()
        try await body(server, port)
        if server.isRunning {
            server.terminate()
            try await server.waitForExit()
        }
    }

    /// How many complete status lines the server sent.
    static func responses(_ text: String) -> Int {
        text.components(separatedBy: "HTTP/1.1 ").count - 1
    }

    @Test func tricklingBodiesAreCutAtTheBodyDeadlineAndMemoryComesBack() async throws {
        try await Self.withServer(["PAYMENT_BODY_TIMEOUT_SECONDS": "3"]) { server, port in
            let before = try ProcStatus(pid: server.pid)
            var connections: [RawConnection] = []
            // Authenticated, so that the body is really being read: the worst case.
            for index in 0..<300 {
                let connection = try await RawConnection.open(port: port)
                let path = index % 2 == 0 ? "/v1/orders" : "/v1/webhooks/payment-status"
                let credential = index % 2 == 0 ? "Authorization: Bearer tok" : "Payment-Signature: t=1,v1=00"
                try await connection.send("POST \(path) HTTP/1.1\r\nHost: x\r\n\(credential)\r\nContent-Length: 65536\r\n\r\n" + String(repeating: "a", count: 60_000))
                connections.append(connection)
            }
            let started = ContinuousClock.now
            // One more byte now and then: never idle, never done.
            let drip = Task {
                for _ in 0..<20 {
                    try await Task.sleep(for: .seconds(1))
                    for connection in connections where !connection.isClosedByServer { try? await connection.send("a") }
                }
            }
            for connection in connections {
                try await eventually(20, "the server to close a trickling body") { connection.isClosedByServer }
            }
            let elapsed = ContinuousClock.now - started
            drip.cancel()
            let timedOut = connections.filter { $0.text.contains("408 Request Timeout") }.count
            print("trickling bodies: 300 closed by the server after \(elapsed), \(timedOut) answered 408")
            let doubled = connections.filter { Self.responses($0.text) > 1 }.count
            #expect(doubled == 0)
            #expect(timedOut == 300)
            #expect(elapsed < .seconds(15), "closed at the 3 s body deadline, not at the client's pace")
            try await eventually(10, "the sockets to go") { try ProcStatus(pid: server.pid).sockets <= before.sockets + 2 }
            #expect(try await BinaryTests.request(port, "/healthz").status == .ok)
        }
    }

    @Test func requestsWithoutCredentialsAreRefusedUnreadAndTheConnectionClosed() async throws {
        try await Self.withServer { _, port in
            for request in [
                "POST /v1/webhooks/payment-status HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n{",
                "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n{",
                "POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 65536\r\n\r\n{",
            ] {
                let connection = try await RawConnection.open(port: port)
                try await connection.send(request)
                try await eventually(10, "a 401 and the connection closed") { connection.isClosedByServer }
                #expect(connection.text.hasPrefix("HTTP/1.1 401"))
                #expect(Self.responses(connection.text) == 1)
            }
        }
    }

    @Test func oneRequestGetsOneResponseWhateverItsFraming() async throws {
        try await Self.withServer { _, port in
            for (request, status) in [
                ("POST /v1/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "501"),
                ("POST /v1/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc", "501"),
                ("POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"),
                ("POST /v1/orders HTTP/1.1\r\nHost: x\r\nExpect: the-moon\r\nContent-Length: 2\r\n\r\n{}", "417"),
                // A broken chunk after a valid start, with and without credentials: whichever
                // comes first, the parser's 400 or the route's 401, is the only answer.
                ("POST /v1/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "40"),
                ("POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"),
            ] {
                let connection = try await RawConnection.open(port: port)
                try await connection.send(request)
                try await eventually(10, "an answer and the connection closed") { connection.isClosedByServer }
                // Whatever arrives later on the same connection must not pair with another request.
                try await Task.sleep(for: .milliseconds(200))
                #expect(Self.responses(connection.text) == 1, "\(request.debugDescription) got \(connection.text.debugDescription)")
                #expect(connection.text.hasPrefix("HTTP/1.1 \(status)"), "\(request.debugDescription) got \(connection.text.debugDescription)")
            }
        }
    }

    @Test func expect100ContinueIsAnswered() async throws {
        try await Self.withServer { _, port in
            let connection = try await RawConnection.open(port: port)
            let body = #"{"id":"c1","amount":5,"currency":"EUR"}"#
            try await connection.send("POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            try await eventually(10, "100 Continue") { connection.text.hasPrefix("HTTP/1.1 100 Continue\r\n") }
            try await connection.send(body)
            try await eventually(10, "the 201") { connection.text.contains("HTTP/1.1 201") }
            await connection.close()
        }
    }

    @Test func sigtermWithTricklingClientsExitsWithinTheDrainPeriod() async throws {
        try await Self.withServer(["PAYMENT_DRAIN_SECONDS": "2"]) { server, port in
            var connections: [RawConnection] = []
            for _ in 0..<5 {
                let connection = try await RawConnection.open(port: port)
                try await connection.send("POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: 1000\r\n\r\n{")
                connections.append(connection)
            }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            server.terminate()
            #expect(try await server.waitForExit(within: 20) == 0)
            let elapsed = ContinuousClock.now - started
            print("SIGTERM with 5 trickling bodies: exited 0 after \(elapsed)")
            #expect(elapsed < .seconds(6), "the drain period is 2 s")
            let trickling = connections
            try await eventually(5, "every trickling connection to be closed") { trickling.allSatisfy(\.isClosedByServer) }
        }
    }

    @Test func aHugeOrderIDIsNotWrittenWholeIntoTheAccessLog() async throws {
        try await Self.withServer(["LOG_LEVEL": "info"]) { server, port in
            let id = String(repeating: "a", count: 12_000)
            #expect(try await BinaryTests.request(port, "/v1/orders/\(id)").status == .unauthorized)
            try await eventually(10, "the access-log line") { server.printed.contains("status=401") }
            #expect(!server.printed.contains(String(repeating: "a", count: 65)))
            #expect(server.printed.contains(String(repeating: "a", count: 64) + "…"))
        }
    }

    @Test func operatorCommandsRefuseBadPortsAndLeaveAFileThatIsNoDatabaseAlone() async throws {
        let folder = try BinaryTests.Folder()
        defer { folder.remove() }
        let notADatabase = folder.path + "/notes.txt"
        try "not a database\n".write(toFile: notADatabase, atomically: true, encoding: .utf8)
        for (arguments, environment, message) in [
            (["healthcheck", "--url", "http://127.0.0.1:70000/readyz"], [:], "--url has port 70000"),
            (["healthcheck"], ["PORT": "abc"], "PORT must be a port number"),
            (["healthcheck"], ["PORT": "99999"], "PORT must be a port number"),
            (["webhook", "--url", "http://127.0.0.1:70000", "--order", "o", "--status", "failed"], ["PAYMENT_WEBHOOK_SECRET": "s"], "--url has port 70000"),
            (["webhook", "--database", notADatabase, "--order", "o", "--status", "failed"], [:], "is not a SQLite database"),
        ] as [([String], [String: String], String)] {
            let process = try ServerProcess(arguments, environment: environment, directory: folder.path)
            let status = try await process.waitForExit(within: 20)
            #expect(status != 0 && process.printed.contains(message), "\(arguments) \(environment): \(status) \(process.printed)")
            #expect(!process.printed.contains("Fatal error"))
        }
        #expect(try String(contentsOfFile: notADatabase, encoding: .utf8) == "not a database\n")
    }

    @Test func http10ClientsAreAnsweredInTheirVersionAndClosedAfterwards() async throws {
        try await Self.withServer { _, port in
            #expect(try await BinaryTests.request(port, "/v1/orders", method: .post, token: "tok", json: #"{"id":"h1","amount":5,"currency":"EUR"}"#).status == .created)
            // A stream: no chunked coding, the body as it is, ended by closing.
            let stream = try await RawConnection.open(port: port)
            try await stream.send("GET /v1/orders/h1/events HTTP/1.0\r\nAuthorization: Bearer tok\r\n\r\n")
            try await eventually(10, "the stream's first event") { stream.text.contains("data: ") }
            #expect(stream.text.hasPrefix("HTTP/1.0 200"))
            #expect(!stream.text.lowercased().contains("transfer-encoding"))
            #expect(stream.text.lowercased().contains("connection: close"))
            #expect(try await BinaryTests.request(port, "/v1/orders/h1/transitions", method: .post, token: "tok", json: #"{"status":"failed"}"#).status == .ok)
            try await eventually(10, "the stream to end by closing") { stream.isClosedByServer }
            #expect(stream.text.contains("\"seq\":2"))
            // Without keep-alive: closed after the response.
            let plain = try await RawConnection.open(port: port)
            try await plain.send("GET /healthz HTTP/1.0\r\n\r\n")
            try await eventually(10, "the connection to close after the answer") { plain.isClosedByServer }
            #expect(plain.text.hasPrefix("HTTP/1.0 200") && plain.text.hasSuffix("ok\n"))
            // With keep-alive and a length: kept open for the next request.
            let kept = try await RawConnection.open(port: port)
            try await kept.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            try await eventually(10, "the answer") { kept.text.hasSuffix("ok\n") }
            try await kept.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            try await eventually(10, "the second answer") { Self.responses(kept.text.replacingOccurrences(of: "HTTP/1.0 ", with: "HTTP/1.1 ")) == 2 }
            #expect(!kept.isClosedByServer)
            await kept.close()
        }
    }
}
