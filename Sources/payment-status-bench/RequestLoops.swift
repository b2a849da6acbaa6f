import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The shared queue of jobs the K request loops take from. A `processing`
/// that is acknowledged queues that order's `succeeded` at the back, so the
/// two never race; with a rate, the i-th request overall waits until start + i/rate.
final class Dispatcher: Sendable {
    enum Next {
        case send(Job, notBefore: UInt64?)
        case wait
        case finished
    }

    struct Tally: Sendable {
        var ok = 0
        var failed = 0
        var statuses: [Int: Int] = [:]
        var firstSend: UInt64 = 0
        var lastAnswer: UInt64 = 0
    }

    private struct State {
        var queue: [Job]
        var head = 0
        var parked: [@Sendable () -> Void] = []
        var slot = 0
        var completed = 0
        var tally = Tally()
        var start: UInt64 = 0
        var aborted = false
    }

    let total: Int
    let rate: Double
    let sendTimes: SendTimes?
    private let state: Mutex<State>
    private let finishedPromise: EventLoopPromise<Void>
    /// Called with the answer body of a successful create (this service's `stream_url`).
    private let onCreated: (@Sendable (Int, ByteBuffer?) -> Void)?

    init(jobs: [Job], total: Int, rate: Double, sendTimes: SendTimes?, eventLoop: EventLoop,
         onCreated: (@Sendable (Int, ByteBuffer?) -> Void)? = nil) {
        self.total = total
        self.rate = rate
        self.sendTimes = sendTimes
        self.onCreated = onCreated
        self.state = Mutex(State(queue: jobs))
        self.finishedPromise = eventLoop.makePromise()
        if total == 0 { finishedPromise.succeed(()) }
    }

    var finished: EventLoopFuture<Void> { finishedPromise.futureResult }
    var isFinished: Bool { state.withLock { $0.completed >= total || $0.aborted } }
    var tally: Tally { state.withLock { $0.tally } }

    func begin() { state.withLock { $0.start = monotonicNanos() } }

    /// The next job for a loop, or `.wait` (then `wake` is called when there may be one).
    func next(wake: @escaping @Sendable () -> Void) -> Next {
        state.withLock { state in
            if state.aborted || state.completed >= total { return .finished }
            guard state.head < state.queue.count else {
                state.parked.append(wake)
                return .wait
            }
            let job = state.queue[state.head]
            state.head += 1
            if state.head > 4096 && state.head * 2 > state.queue.count {
                state.queue.removeFirst(state.head)
                state.head = 0
            }
            let slot = state.slot
            state.slot += 1
            let notBefore = rate > 0 ? state.start + UInt64(Double(slot) * 1e9 / rate) : nil
            return .send(job, notBefore: notBefore)
        }
    }

    /// Called just before a job's request is written.
    func stamp(_ job: Job, at now: UInt64) {
        if job.step > 0 { sendTimes?.stamp(order: Int(job.order), seq: Int(job.step) + 1, at: now) }
        state.withLock { if $0.tally.firstSend == 0 { $0.tally.firstSend = now } }
    }

    /// A job's answer (`status` 0: the connection failed before one came).
    func complete(_ job: Job, status: Int, body: ByteBuffer?) {
        let success = (200..<300).contains(status)
        if success, job.step == 0 { onCreated?(Int(job.order), body) }
        let now = monotonicNanos()
        let (wake, done) = state.withLock { state -> ([@Sendable () -> Void], Bool) in
            state.tally.statuses[status, default: 0] += 1
            state.tally.lastAnswer = now
            state.completed += 1
            if success {
                state.tally.ok += 1
                if job.step == 1 { state.queue.append(Job(order: job.order, step: 2)) }
            } else {
                state.tally.failed += 1
                // The order's `succeeded` will not be sent: it counts as failed too.
                if job.step == 1 {
                    state.tally.failed += 1
                    state.completed += 1
                }
            }
            let done = state.completed >= total
            let wake = (success && job.step == 1) || done ? state.parked : []
            if !wake.isEmpty { state.parked.removeAll() }
            return (wake, done)
        }
        for loop in wake { loop() }
        if done { finishedPromise.succeed(()) }
    }

    /// Gives up on every job not yet answered (the server cannot be reached).
    /// Returns false when it had already given up.
    @discardableResult
    func abort() -> Bool {
        let parked = state.withLock { state -> [@Sendable () -> Void]? in
            guard !state.aborted, state.completed < total else { return nil }
            state.aborted = true
            state.tally.failed += total - state.completed
            state.tally.statuses[0, default: 0] += total - state.completed
            let parked = state.parked
            state.parked.removeAll()
            return parked
        }
        guard let parked else { return false }
        for loop in parked { loop() }
        finishedPromise.succeed(())
        return true
    }
}

/// One keep-alive HTTP/1.1 connection that sends a job, waits for its
/// answer, then sends the next: K of these make K concurrent request loops.
final class RequestLoopHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let dispatcher: Dispatcher
    private let workload: Workload
    private var context: ChannelHandlerContext?
    private var inFlight: Job?
    private var status = 0
    private var body: ByteBuffer?
    private var closeAfterAnswer = false

    init(dispatcher: Dispatcher, workload: Workload) {
        self.dispatcher = dispatcher
        self.workload = workload
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        sendNext()
    }

    private func sendNext() {
        guard let context, inFlight == nil, context.channel.isActive else { return }
        let eventLoop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        switch dispatcher.next(wake: { eventLoop.execute { bound.value.sendNext() } }) {
        case .wait:
            return
        case .finished:
            context.close(promise: nil)
        case .send(let job, let notBefore):
            inFlight = job
            let now = monotonicNanos()
            if let notBefore, notBefore > now + 20_000 {
                eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(notBefore - now))) { [self] in
                    // The connection may have closed meanwhile: the job was answered as failed then.
                    if self.inFlight != nil { self.write(job) }
                }
            } else {
                write(job)
            }
        }
    }

    private func write(_ job: Job) {
        guard let context else { return }
        let (head, requestBody) = workload.request(for: job)
        status = 0
        body = nil
        dispatcher.stamp(job, at: monotonicNanos())
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(requestBody))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            closeAfterAnswer = !head.isKeepAlive
        case .body(var part):
            guard inFlight?.step == 0, workload.createAnswerNeeded else { return }
            if body == nil { body = part } else { body!.writeBuffer(&part) }
        case .end:
            guard let job = inFlight else { return }
            inFlight = nil
            dispatcher.complete(job, status: status, body: body)
            body = nil
            if closeAfterAnswer {
                context.close(promise: nil)
            } else {
                sendNext()
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let job = inFlight {
            inFlight = nil
            dispatcher.complete(job, status: 0, body: nil)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Runs K request loops until the dispatcher has an answer for every job;
/// a loop whose connection closes is reconnected while work remains.
final class RequestLoops: Sendable {
    private let group: EventLoopGroup
    private let workload: Workload
    private let dispatcher: Dispatcher
    private let connectFailures = Atomic<Int>(0)

    init(group: EventLoopGroup, workload: Workload, dispatcher: Dispatcher) {
        self.group = group
        self.workload = workload
        self.dispatcher = dispatcher
    }

    /// Starts `count` loops and blocks until every job is answered.
    func run(connections count: Int) throws {
        dispatcher.begin()
        for _ in 0..<max(count, 1) { open() }
        try dispatcher.finished.wait()
    }

    private func open() {
        guard !dispatcher.isFinished else { return }
        let dispatcher = self.dispatcher
        let workload = self.workload
        ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if workload.server.tls { try channel.pipeline.syncOperations.addHandler(ClientTLS.handler(ClientTLS.http1)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(RequestLoopHandler(dispatcher: dispatcher, workload: workload))
                }
            }
            .connect(host: workload.server.host, port: workload.server.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.connectFailures.store(0, ordering: .relaxed)
                    channel.closeFuture.whenComplete { _ in self.open() }
                case .failure(let error):
                    let failures = self.connectFailures.add(1, ordering: .relaxed).newValue
                    if failures > 50 {
                        if dispatcher.abort() { emit("payment-status-bench: cannot connect to \(workload.server): \(error)", to: 2) }
                        return
                    }
                    guard !dispatcher.isFinished else { return }
                    self.group.next().scheduleTask(in: .milliseconds(100)) { self.open() }
                }
            }
    }
}
