import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
@testable import PaymentStatus

/// Expiring stream tokens: the rules under "Authentication" in API.md.
@Suite("Stream tokens", .timeLimit(.minutes(2)))
struct StreamTokenTests {
    static let credentials = Credentials(
        apiToken: "t", streamSecret: "secret", webhookSecrets: [], streamTokenLifetime: .seconds(60),
        legacyStreamTokensUntil: Timestamp(millisecondsSince1970: 2_000_000_000_000))
    static let now = Timestamp(millisecondsSince1970: 1_900_000_000_000)

    @Test func aTokenCarriesItsExpiryUnderTheMAC() throws {
        let grant = Self.credentials.streamGrant(forOrder: "o1", now: Self.now)
        #expect(grant.expiresAt.millisecondsSince1970 == Self.now.millisecondsSince1970 + 60_000)
        let token = Substring(grant.token)
        #expect(Self.credentials.checkStreamToken(token, forOrder: "o1", now: Self.now) == .valid)
        let lastValid = Timestamp(millisecondsSince1970: grant.expiresAt.millisecondsSince1970 - 1)
        #expect(Self.credentials.checkStreamToken(token, forOrder: "o1", now: lastValid) == .valid)
        #expect(Self.credentials.checkStreamToken(token, forOrder: "o1", now: grant.expiresAt) == .expired)
        // Another order, another secret, a moved expiry, a changed MAC, garbage: forged, whatever the time.
        #expect(Self.credentials.checkStreamToken(token, forOrder: "o2", now: Self.now) == .invalid)
        var other = Self.credentials
        other.streamSecret = "other"
        #expect(other.checkStreamToken(token, forOrder: "o1", now: Self.now) == .invalid)
        let (expiry, mac) = (grant.token.split(separator: ".")[0], grant.token.split(separator: ".")[1])
        #expect(Self.credentials.checkStreamToken("\(Int(expiry)! + 3600).\(mac)", forOrder: "o1", now: Self.now) == .invalid)
        let flipped = String(mac.dropLast()) + (mac.last == "A" ? "B" : "A")
        #expect(Self.credentials.checkStreamToken(Substring("\(expiry).\(flipped)"), forOrder: "o1", now: Self.now) == .invalid)
        for garbage in ["", ".", "x.y", "1.", ".abc", "-5.\(mac)", "99999999999999.\(mac)", String(repeating: "a", count: 400)] {
            #expect(Self.credentials.checkStreamToken(Substring(garbage), forOrder: "o1", now: Self.now) == .invalid)
        }
        // An expired forgery is still a forgery, not "expired".
        let late = Timestamp(millisecondsSince1970: Self.now.millisecondsSince1970 + 3_600_000)
        #expect(Self.credentials.checkStreamToken("\(expiry).\(flipped)", forOrder: "o1", now: late) == .invalid)
    }

    @Test func tokensFromBeforeExpiryWorkUntilTheRecordedCutOff() {
        // The form issued before tokens carried an expiry: base64url(HMAC(secret, order id)).
        let mac = HMACForTests.legacy(secret: "secret", orderID: "o1")
        #expect(Self.credentials.checkStreamToken(Substring(mac), forOrder: "o1", now: Self.now) == .valid)
        #expect(Self.credentials.checkStreamToken(Substring(mac), forOrder: "o2", now: Self.now) == .invalid)
        let after = Timestamp(millisecondsSince1970: 2_000_000_000_000)
        #expect(Self.credentials.checkStreamToken(Substring(mac), forOrder: "o1", now: after) == .expired)
        var none = Self.credentials
        none.legacyStreamTokensUntil = nil
        #expect(none.checkStreamToken(Substring(mac), forOrder: "o1", now: Self.now) == .expired)
    }

    @Test func anExpiredTokenIs401TokenExpiredAndTheMerchantMintsAFreshOne() async throws {
        try await TestService(configure: { $0.streamTokenLifetime = .seconds(3) }).withLiveServer { live, services in
            let order = try await live.client.createOrder(id: "o1")
            let token = try #require(order["stream_token"].string)
            let expires = try #require(order["stream_token_expires_at"].string.flatMap { Timestamp(rfc3339: $0) })
            #expect(order["stream_url"].string == "/v1/orders/o1/events?token=\(token)")
            let fromNow = expires.millisecondsSince1970 - Timestamp.now().millisecondsSince1970
            // Expiry is in whole seconds, rounded up: between 3 and 4 s from the moment it was issued.
            #expect(fromNow > 0 && fromNow <= 4000)
            #expect(try await live.once("/v1/orders/o1/events?token=\(token)&after=0", method: .get, headers: LongPollTests.json).status == .ok)
            try await Task.sleep(for: .milliseconds(Int(fromNow) + 50))
            for headers: HTTPFields in [LongPollTests.json, [.accept: "text/event-stream"]] {
                let expired = try await live.client.get("/v1/orders/o1/events?token=\(token)", headers: headers)
                try RouterTests.expectProblem(expired, .unauthorized)
                #expect(try JSON(expired.body)["type"].string?.hasSuffix("token-expired") == true)
            }
            let forged = try await live.client.get("/v1/orders/o1/events?token=1.AAAA", headers: LongPollTests.json)
            try RouterTests.expectProblem(forged, .unauthorized)
            #expect(try JSON(forged.body)["type"].string?.hasSuffix("token-expired") == false)

            let minted = try await live.client.post("/v1/orders/o1/stream-token", json: [:])
            #expect(minted.status == .ok && minted.headers[.contentType] == "application/json")
            let fresh = try JSON(minted.body)
            #expect(fresh.keys == ["stream_token", "stream_url", "expires_at"])
            let freshToken = try #require(fresh["stream_token"].string)
            #expect(fresh["stream_url"].string == "/v1/orders/o1/events?token=\(freshToken)")
            #expect(fresh["expires_at"].string.flatMap { Timestamp(rfc3339: $0) } != nil)
            #expect(try await live.once(try #require(fresh["stream_url"].string) + "&after=0", method: .get, headers: LongPollTests.json).status == .ok)
            try RouterTests.expectProblem(try await live.client.post("/v1/orders/ghost/stream-token", json: [:]), .notFound)
            try RouterTests.expectProblem(try await live.client.post("/v1/orders/o1/stream-token", json: [:], headers: [:]), .unauthorized)
            // The order JSON of a read carries a fresh token too.
            let read = try JSON(try await live.client.get("/v1/orders/o1").body)
            #expect(read["stream_token_expires_at"].string != nil)
            _ = services
        }
    }

    @Test func theLegacyCutOffIsRecordedOnceAndKeptAcrossRestarts() async throws {
        let service = try TestService(configure: { $0.streamTokenLifetime = .seconds(3600) })
        defer { service.cleanUp() }
        let first = try await AppServices.open(service.configuration, logger: TestService.logger)
        let cutOff = try #require(first.credentials.legacyStreamTokensUntil)
        let expected = Timestamp.now().millisecondsSince1970 + 3_600_000
        #expect(abs(cutOff.millisecondsSince1970 - expected) < 60_000)
        try await first.store.close()
        try await Task.sleep(for: .milliseconds(20))
        let second = try await AppServices.open(service.configuration, logger: TestService.logger)
        #expect(second.credentials.legacyStreamTokensUntil == cutOff)
        try await second.store.close()
    }
}

/// The legacy token computed independently of the code under test.
enum HMACForTests {
    static func legacy(secret: String, orderID: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(orderID.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return Data(mac).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
