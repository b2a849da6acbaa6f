/// How `GET /v1/orders/{id}/events` answers a request, read from its `Accept`.
enum StreamResponseKind: Equatable {
    /// Server-Sent Events: the default, and what EventSource asks for.
    case eventStream
    /// The long-poll: JSON, for clients that cannot hold a stream.
    case longPoll

    /// A long-poll when `Accept` gives `application/json` a higher q than
    /// `text/event-stream`; a media type not named counts as q=0, so a tie,
    /// `*/*` or no `Accept` at all gets the stream. Only the exact media types
    /// count: wildcards such as `application/*` name neither.
    init(accept: String?) {
        let json = Self.quality(of: "application/json", in: accept ?? "")
        let stream = Self.quality(of: "text/event-stream", in: accept ?? "")
        self = json > stream ? .longPoll : .eventStream
    }

    /// Whether `Accept` names `text/event-stream` at all, as EventSource's does:
    /// such a client reconnects after a `retry:` where an error would stop it.
    static func namesEventStream(_ accept: String?) -> Bool {
        quality(of: "text/event-stream", in: accept ?? "") > 0
    }

    /// The highest q given to exactly `mediaType` (case-insensitive), 0 when absent.
    static func quality(of mediaType: String, in accept: String) -> Double {
        var best = 0.0
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";")
            guard let type = parts.first, String(type).trimmed.lowercased() == mediaType else { continue }
            var q = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1)
                guard pair.count == 2, pair[0].trimmed.lowercased() == "q" else { continue }
                q = Double(pair[1].trimmed).map { min(max($0, 0), 1) } ?? 0
            }
            best = max(best, q)
        }
        return best
    }
}
