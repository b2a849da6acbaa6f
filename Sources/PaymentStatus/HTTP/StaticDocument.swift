import Crypto
import Hummingbird

/// A file shipped in the binary's resources and served as it is, with an
/// `ETag` (a hash of its bytes) so that browsers revalidate with a 304
/// instead of downloading it again.
struct StaticDocument: Sendable {
    let body: ByteBuffer
    let contentType: String
    let cacheControl: String
    let etag: String

    init(bytes: [UInt8], contentType: String, cacheControl: String = "no-cache") {
        body = ByteBuffer(bytes: bytes)
        self.contentType = contentType
        self.cacheControl = cacheControl
        let digest = SHA256.hash(data: bytes).prefix(16)
        etag = "\"" + digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() + "\""
    }

    /// 304 when `If-None-Match` names this version (or `*`), else the document.
    func response(to request: Request) -> Response {
        var headers: HTTPFields = [.contentType: contentType, .cacheControl: cacheControl, .eTag: etag]
        if let match = request.headers[.ifNoneMatch], Self.matches(match, etag) {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }

    /// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored.
    static func matches(_ header: String, _ etag: String) -> Bool {
        header.split(separator: ",").contains { candidate in
            let tag = candidate.trimmed
            return tag == "*" || tag == etag || tag == "W/" + etag
        }
    }
}
