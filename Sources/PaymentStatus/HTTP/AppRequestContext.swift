import Hummingbird
import NIOCore

/// The request context of every route.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection, so that a stream whose client stopped reading can be cut.
    let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The contract's body limit: larger bodies are answered 413.
    public var maxUploadSize: Int { RequestBodyLimit.bytes }
}

/// Bodies over 64 KiB are refused with 413.
enum RequestBodyLimit {
    static let bytes = 64 * 1024
}
