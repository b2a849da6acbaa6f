/// How a route's response body lets go of a connection that goes on
/// streaming after it: thrown once, by `endResponseBody()`, and the failure
/// of every close Hummingbird asks for after that. Not a failure of the
/// request: nothing logs it or answers it.
///
/// Why an error: it is the only way out of a Hummingbird 2 response body
/// that neither ends the response nor keeps a task per stream. What
/// Hummingbird then does, and this relies on (pinned by
/// `HummingbirdHandOverTests`, over its real server):
/// - it writes nothing more for that response: no end, no error status;
/// - the connection's task leaves `executeThenClose` by its error path,
///   which asks the channel to close (HTTP/1.1 half-closes the output
///   first) and returns without waiting for the close, so the task ends;
/// - those closes go through the pipeline, where `SSEConnectionHandler`
///   refuses them once handed over: the connection stays open, and the
///   stream closes it when it ends.
/// Returning from the body instead would keep the task waiting for the next
/// request, or for the connection to close: a task per open stream.
struct ConnectionHandedOver: Error {
    /// Ends the response body of a route whose connection has just been
    /// handed over (`SSEConnectionHandler.handOver`): the one place a route
    /// throws this.
    static func endResponseBody() throws -> Never {
        throw ConnectionHandedOver()
    }
}
