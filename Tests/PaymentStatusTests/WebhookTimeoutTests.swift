import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import PaymentStatus

/// An attempt ends at its timeout (10 s) whatever the receiver does: one
/// that takes the request and never answers, and one that sends a 200's
/// head and then its body a byte at a time without end. The second is what
/// a read timeout alone would never cut (each byte resets it); the deadline
/// on the whole exchange does, and it is the attempt's only timeout. And an
/// answer whose body never ends is read to 64 KiB and its status kept.
@Suite("Webhook attempt timeout and answer size", .timeLimit(.minutes(1)))
struct WebhookTimeoutTests {
    /// `http` to addresses on loopback; a name resolves to nothing.
    static var loopbackOnly: WebhookURLPolicy {
        var policy = WebhookURLPolicy(allowHTTP: true, allowPrivateNetworks: true)
        policy.resolve = { host in
            NetworkAddress(literal: host).map { .success([$0]) } ?? .failure(ResolutionFailed(host: host, reason: "not in this test"))
        }
        return policy
    }

    /// Three times the timeout: past it, the attempt was not cut.
    static let bound = 3 * Double(WebhookSender.timeout.components.seconds)

    @Test func anAttemptEndsAtItsTimeoutWhenTheReceiverStallsOrTrickles() async throws {
        let silent = try await StallingReceiver(.nothing)
        let trickling = try await StallingReceiver(.aByteAtATime)
        let sender = WebhookSender(policy: Self.loopbackOnly, maxConnectionsPerHost: 4)
        async let stalled = withTimeout(Self.bound, "an attempt to a receiver that never answers") {
            await sender.send(WebhookSenderTests.message(to: "http://127.0.0.1:\(silent.port)/hooks"))
        }
        async let trickled = withTimeout(Self.bound, "an attempt to a receiver whose answer never ends") {
            await sender.send(WebhookSenderTests.message(to: "http://127.0.0.1:\(trickling.port)/hooks"))
        }
        let (first, second) = try await (stalled, trickled)
        await sender.shutdown()
        await silent.stop()
        await trickling.stop()
        for attempt in [first, second] {
            #expect(attempt.statusCode == nil, "\(attempt)")
            #expect(attempt.error == "no answer within \(WebhookSender.timeout)", "\(attempt)")
            #expect(attempt.durationMilliseconds >= 9_000, "\(attempt)")
        }
        #expect(trickling.bodyBytesSent > 0, "the trickling receiver never started its answer")
    }

    @Test func anEndlessAnswerIsReadTo64KiBAndItsStatusKept() async throws {
        let endless = try await StallingReceiver(.endlessBody)
        let sender = WebhookSender(policy: Self.loopbackOnly, maxConnectionsPerHost: 4)
        let attempt = try await withTimeout(Self.bound, "an attempt to an endless answer") {
            await sender.send(WebhookSenderTests.message(to: "http://127.0.0.1:\(endless.port)/hooks"))
        }
        await sender.shutdown()
        await endless.stop()
        // Read to its end, the body would have run into the timeout instead.
        #expect(attempt.statusCode == 200 && attempt.error == nil, "\(attempt)")
        #expect(endless.bodyBytesSent >= WebhookSender.maxResponseBytes)
    }
}

/// A plain HTTP receiver on loopback that reads a request and then says
/// nothing, or answers `200` with a body that does not end in time.
final class StallingReceiver: Sendable {
    enum Answer: Sendable {
        case nothing
        /// A 1 MB body, one byte every 200 ms.
        case aByteAtATime
        /// A 1 GB body, 16 KiB every 5 ms.
        case endlessBody
    }

    let port: Int
    private let channel: any Channel
    private let sent = Counter()

    /// Bytes of body written so far, over every connection.
    var bodyBytesSent: Int { sent.value.load(ordering: .relaxed) }

    final class Counter: Sendable {
        let value = Atomic(0)
    }

    init(_ answer: Answer) async throws {
        let sent = sent
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Stall(answer: answer, sent: sent))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    func stop() async {
        try? await channel.close()
    }

    private final class Stall: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let answer: Answer
        let sent: Counter
        let started = Atomic(false)

        init(answer: Answer, sent: Counter) {
            self.answer = answer
            self.sent = sent
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            // The first read of the request starts the answer; later ones are ignored.
            guard answer != .nothing, !started.exchange(true, ordering: .relaxed) else { return }
            let (length, chunk, every) = answer == .aByteAtATime ? (1_000_000, 1, 200) : (1_000_000_000, 16 * 1024, 5)
            let channel = context.channel
            let sent = sent
            channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(length)\r\n\r\n"), promise: nil)
            let part = ByteBuffer(repeating: UInt8(ascii: "x"), count: chunk)
            let task = channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(Int64(every)), delay: .milliseconds(Int64(every))) { _ in
                channel.writeAndFlush(part, promise: nil)
                sent.value.add(chunk, ordering: .relaxed)
            }
            channel.closeFuture.whenComplete { _ in task.cancel() }
        }
    }
}
