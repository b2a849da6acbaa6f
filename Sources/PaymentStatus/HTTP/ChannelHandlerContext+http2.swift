import NIOCore
import NIOHTTPTypesHTTP2

extension ChannelHandlerContext {
    /// True in the child channel of one HTTP/2 stream, false on a connection
    /// of its own (HTTP/1.1). A stream shares its connection's socket: socket
    /// options are not its to set, and closing it ends only that stream.
    var isHTTP2Stream: Bool {
        (try? pipeline.syncOperations.handler(type: HTTP2FramePayloadToHTTPServerCodec.self)) != nil
    }
}
