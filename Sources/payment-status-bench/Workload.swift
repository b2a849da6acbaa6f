import ArgumentParser
import NIOCore
import NIOHTTP1

/// The system under test: its paths and authentication differ, the load does not.
enum TargetKind: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// This service: bearer token, `stream_url` from the create answer.
    case paymentStatus = "payment-status"
    /// The FastAPI peer: the same paths without authentication.
    case fastapi
    /// nginx + nchan: no orders; publish to `/pub/{id}`, subscribe to `/sub/{id}`.
    case nchan
}

/// One step of the load: create an order (step 0), move it to `processing`
/// (step 1), then to `succeeded` (step 2). Event seq = step + 1.
struct Job: Sendable {
    var order: Int32
    var step: Int8
}

/// Builds every request the tool sends for one target.
struct Workload: Sendable {
    let target: TargetKind
    let server: ServerAddress
    let token: String?
    /// Order ids are `<prefix>_<index>`; `\w` only, as nchan's `/pub/(\w+)` needs.
    let idPrefix: String
    let at: String

    static let statuses = ["initiated", "processing", "succeeded"]

    func orderID(_ index: Int) -> String { "\(idPrefix)_\(index)" }

    /// The request of a job: the head and its body.
    func request(for job: Job) -> (HTTPRequestHead, ByteBuffer) {
        let id = orderID(Int(job.order))
        let seq = Int(job.step) + 1
        let path: String
        let body: String
        switch (target, job.step) {
        case (.nchan, _):
            path = "/pub/\(id)"
            body = eventJSON(orderID: id, seq: seq)
        case (_, 0):
            path = "/v1/orders"
            body = #"{"id":"\#(id)","amount":1999,"currency":"EUR"}"#
        default:
            path = "/v1/orders/\(id)/transitions"
            body = #"{"status":"\#(Self.statuses[seq - 1])"}"#
        }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: server.hostHeader)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(body.utf8.count))
        if target == .paymentStatus, let token { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return (head, ByteBuffer(string: body))
    }

    /// What nchan is asked to publish: the event JSON this service would push,
    /// so that the subscriber parses the same seq and status from the same size.
    func eventJSON(orderID id: String, seq: Int) -> String {
        let previous = seq == 1 ? "null" : "\"\(Self.statuses[seq - 2])\""
        return #"{"order_id":"\#(id)","seq":\#(seq),"status":"\#(Self.statuses[seq - 1])","previous":\#(previous),"source":"api","event_id":null,"reason":null,"at":"\#(at)"}"#
    }

    /// The stream path when it does not come from the create answer.
    func streamPath(order index: Int) -> String? {
        switch target {
        case .paymentStatus: nil
        case .fastapi: "/v1/orders/\(orderID(index))/events"
        case .nchan: "/sub/\(orderID(index))"
        }
    }

    /// Whether the create answer must be read (for its `stream_url`).
    var createAnswerNeeded: Bool { target == .paymentStatus }

    /// `stream_url` out of a create answer, JSON escapes of `/` undone.
    static func streamURL(inCreateAnswer body: ByteBuffer) -> String? {
        let text = String(buffer: body)
        guard let key = text.range(of: #""stream_url""#) else { return nil }
        var rest = text[key.upperBound...].drop(while: { $0 == " " || $0 == ":" })
        guard rest.first == "\"" else { return nil }
        rest = rest.dropFirst()
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return rest[..<end].replacingOccurrences(of: #"\/"#, with: "/")
    }
}

extension StringProtocol {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }

    fileprivate func range(of target: String) -> Range<Index>? {
        guard !target.isEmpty else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(target) {
                return index..<self.index(index, offsetBy: target.count)
            }
            index = self.index(after: index)
        }
        return nil
    }
}
