import Foundation
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing
@testable import PaymentStatus

extension FeedTests {
    /// The feed of the real binary through `kill -9`: a merchant back end that
    /// follows the cursors, restarts with the service and resumes from the last
    /// cursor it took gets every acknowledged event, once; on SIGTERM an open
    /// feed stream ends cleanly.
    @Suite("The feed of the payment-status binary", .serialized, .timeLimit(.minutes(5)))
    struct FeedBinaryTests {
        /// What a feed reader has taken so far.
        struct Reader: Sendable {
            var keys: [String] = []
            var cursor: String?
        }

        /// Reads pages after the reader's cursor until `stop` is set and a page comes back empty, or the server is gone.
        static func tail(_ port: Int, _ reader: Reader, stop: Flag) async -> Reader {
            var reader = reader
            while true {
                let stopping = stop.isSet
                let path = "/v1/events?limit=50" + (reader.cursor.map { "&after=\($0)" } ?? "")
                guard let response = try? await BinaryTests.request(port, path, token: "tok"), response.status == .ok,
                    let page = try? JSON(response.body)
                else { return reader }  // killed: a page not received whole is not taken
                let events = page["events"].array
                reader.keys += events.map(FeedHTTPTests.key)
                reader.cursor = page["next_cursor"].string
                if events.isEmpty {
                    if stopping { return reader }
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
        }

        /// Creates, moves and settles `orders` orders at once; returns the events answered 2xx (`order/seq`).
        static func load(_ port: Int, orders: [String], acknowledged: Counter) async -> [String] {
            await withTaskGroup(of: [String].self) { group in
                for order in orders {
                    group.addTask {
                        var done: [String] = []
                        let steps = [
                            ("/v1/orders", #"{"id":"\#(order)","amount":5,"currency":"EUR"}"#),
                            ("/v1/orders/\(order)/transitions", #"{"status":"processing"}"#),
                            ("/v1/orders/\(order)/transitions", #"{"status":"succeeded"}"#),
                        ]
                        for (seq, step) in steps.enumerated() {
                            guard let answer = try? await BinaryTests.request(port, step.0, method: .post, token: "tok", json: step.1),
                                answer.status == .created || answer.status == .ok
                            else { return done }
                            done.append("\(order)/\(seq + 1)")
                            acknowledged.increment()
                        }
                        return done
                    }
                }
                return await group.reduce(into: []) { $0 += $1 }
            }
        }

        @Test(arguments: StoreKind.allCases)
        func aReaderResumingAfterKillDashNineGetsEveryAcknowledgedEventOnce(store: StoreKind) async throws {
            try await TestService(store: store).withDatabase { configuration in
                let folder = try TemporaryFolder("ps-feed-binary")
                defer { folder.remove() }
                var environment = ["PAYMENT_API_TOKEN": "tok", "LOG_LEVEL": "notice"]
                if case .postgres(let server) = configuration.database {
                    environment["PAYMENT_DB"] = "postgres://\(server.username):\(server.password ?? "")@\(server.host):\(server.port)/\(server.database)?sslmode=disable"
                }
                var reader = Reader()
                var acknowledged: Set<String> = []
                for cycle in 0..<5 {
                    let server = try BinaryTests.serve(folder, environment)
                    let port = try await server.port()
                    let stop = Flag()
                    let resumed = reader
                    let tailing = Task { await Self.tail(port, resumed, stop: stop) }
                    let count = Counter()
                    let writes = Task { await Self.load(port, orders: (0..<16).map { "k\(cycle)-\($0)" }, acknowledged: count) }
                    // Killed with writes on the wire and the reader mid-feed.
                    try await eventually(30, "writes to be acknowledged") { count.value >= 12 }
                    server.kill()
                    _ = try await server.waitForExit()
                    acknowledged.formUnion(await writes.value)
                    reader = await tailing.value
                }
                // A last start: the reader catches up from its last cursor (on
                // PostgreSQL, once no older transaction anywhere on the server holds events back).
                let server = try BinaryTests.serve(folder, environment)
                let port = try await server.port()
                let deadline = ContinuousClock.now + .seconds(30)
                repeat {
                    reader = await Self.tail(port, reader, stop: Flag(true))
                } while !acknowledged.isSubset(of: reader.keys) && ContinuousClock.now < deadline

                #expect(reader.keys.count == Set(reader.keys).count, "\(reader.keys.count - Set(reader.keys).count) events read twice")
                let lost = acknowledged.subtracting(reader.keys)
                #expect(lost.isEmpty, "acknowledged but never read: \(lost.sorted().prefix(10))")
                // And what it read is the feed itself, read again from the start.
                var whole = Reader()
                repeat {
                    whole = await Self.tail(port, whole, stop: Flag(true))
                } while whole.keys.count < reader.keys.count && ContinuousClock.now < deadline
                #expect(whole.keys == reader.keys)
                #expect(acknowledged.count >= 5 * 12)

                // SIGTERM with a feed stream open: the stream ends properly and the process exits 0.
                let stream = try await SSEConnection.open(port: port, path: "/v1/events", headers: [("Authorization", "Bearer tok")])
                #expect(try await stream.head().status == .ok)
                server.terminate()
                let transcript = try await stream.readToEnd(within: 20)
                #expect(transcript.ended)
                #expect(transcript.events.count == reader.keys.count)
                #expect(try await server.waitForExit() == 0, "\(server.printed.suffix(2000))")
                print("feed through kill -9 (\(store)): 5 cycles, \(acknowledged.count) acknowledged events, \(reader.keys.count) read once each")
            }
        }
    }
}
