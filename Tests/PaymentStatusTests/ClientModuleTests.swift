import HTTPTypes
import HummingbirdTesting
import Testing
@testable import PaymentStatus

/// `GET /client/payment-status.js` and its types, as a checkout page on
/// another origin loads them.
@Suite("The browser client's files", .timeLimit(.minutes(2)))
struct ClientModuleTests {
    @Test(arguments: [
        ("/client/payment-status.js", "text/javascript; charset=utf-8", "watchPayment"),
        ("/client/payment-status.d.ts", "application/typescript; charset=utf-8", "watchPayment"),
    ])
    func servedWithAnETagA304AndCORS(path: String, contentType: String, mentions: String) async throws {
        try await TestService(configure: { $0.corsOrigins = ["https://shop.example"] }).withRouter { client, _ in
            let response = try await client.get(path, headers: [.origin: "https://shop.example"])
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == contentType)
            #expect(response.headers[.cacheControl] == DocumentsController.clientCacheControl)
            #expect(response.headers[.accessControlAllowOrigin] == "https://shop.example")
            #expect(String(buffer: response.body).contains(mentions))
            let etag = try #require(response.headers[.eTag])
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count == 34)
            for match in [etag, "W/\(etag)", "\"other\", \(etag)", "*"] {
                let again = try await client.get(path, headers: [.ifNoneMatch: match, .origin: "https://shop.example"])
                #expect(again.status == .notModified, "If-None-Match: \(match)")
                #expect(again.body.readableBytes == 0 && again.headers[.eTag] == etag)
                #expect(again.headers[.accessControlAllowOrigin] == "https://shop.example")
            }
            #expect(try await client.get(path, headers: [.ifNoneMatch: "\"stale\""]).status == .ok)
            #expect(try await client.get(path, headers: [.origin: "https://evil.example"]).headers[.accessControlAllowOrigin] == nil)
            // Wrong method: 405 like every other route.
            #expect(try await client.execute(uri: path, method: .post, headers: [:]).status == .methodNotAllowed)
        }
    }
}
