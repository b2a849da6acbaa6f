import HTTPTypes
import Testing
@testable import PaymentStatus

/// What every suite that opens an order's stream or long-poll needs, in one
/// place (kept under the suites' names that callers already use).
extension LiveStreamTests {
    /// The order's stream URL with a fresh stream token.
    static func path(_ order: String, _ services: AppServices, query: String = "") -> String {
        "/v1/orders/\(order)/events?token=\(services.credentials.streamToken(forOrder: order))\(query)"
    }

    /// The `seq` of a status event, checking its `id:` and `event:` lines.
    static func seq(_ event: (id: String?, name: String?, data: String)?) throws -> Int {
        let event = try #require(event)
        let json = try JSON(event.data)
        #expect(event.id == json["seq"].int.map(String.init))
        #expect(event.name == "status")
        return try #require(json["seq"].int)
    }
}

extension LongPollTests {
    /// The `Accept` that asks for the long-poll.
    static let json: HTTPFields = [.accept: "application/json"]

    static func path(_ order: String, _ services: AppServices, _ query: String = "") -> String {
        LiveStreamTests.path(order, services, query: query)
    }

    /// The `seq`s of a long-poll answer's events.
    static func seqs(_ body: JSON) -> [Int] { body["events"].array.compactMap { $0["seq"].int } }
}
