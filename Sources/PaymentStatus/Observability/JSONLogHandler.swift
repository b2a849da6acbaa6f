import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One JSON object per line on stderr (`--log-format json`), for log
/// pipelines: `{"time","level","label","message",…metadata,"source"}`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.key("time"); json.string(Timestamp.now().rfc3339)
        json.key("level"); json.string(event.level.rawValue)
        json.key("label"); json.string(label)
        json.key("message"); json.string(event.message.description)
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) where !Self.reserved.contains(key) {
            json.key(key)
            json.string(value.description)
        }
        json.key("source"); json.string(event.source)
        json.endObject()
        var line = json.buffer
        line.writeStaticString("\n")
        // One write call per line, so lines from concurrent tasks never interleave.
        line.withUnsafeReadableBytes { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
    }

    private static let reserved: Set<String> = ["time", "level", "label", "message", "source"]
}
