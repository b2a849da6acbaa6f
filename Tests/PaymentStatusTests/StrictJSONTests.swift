import HTTPTypes
import NIOCore
import HummingbirdTesting
import Testing
@testable import PaymentStatus

/// The one rule for request bodies (README, "Behaviour where the contract
/// leaves room"): strict JSON, no repeated key, integers only.
@Suite("Strict JSON bodies")
struct StrictJSONTests {
    @Test(arguments: [
        #"{"amount":1,"currency":"EUR",}"#, #"{"status":"failed","status":"succeeded"}"#, #"{"a":1,"\u0061":2}"#,
        #"{"amount":01}"#, #"[1,]"#, #"{"a":"x"}garbage"#, "{\"a\":\"\u{01}\"}", #"{"a":"\x"}"#, #"{'a':1}"#, #"{"a":NaN}"#,
        #"{"a":.5}"#, #"{"a":+1}"#, "", "   ", #"{"a":tru}"#, String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
    ])
    func refusedAsMalformed(_ document: String) {
        #expect(throws: StrictJSON.Violation.self) { try StrictJSON.validate(Array(document.utf8)) }
        if case .notAnInteger = Self.violation(document) { Issue.record("\(document) is malformed, not a number problem") }
    }

    @Test(arguments: [
        #"{"amount":1,"currency":"EUR"}"#, #"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#, #" { "a" : [ ] , "b" : { } } "#,
        #"{"a":"\u00e9\n\"","b":-0,"c":null,"d":true,"e":false}"#, #"{"a":"x","A":"y"}"#, "[]", "-12",
    ])
    func accepted(_ document: String) throws {
        try StrictJSON.validate(Array(document.utf8))
    }

    @Test func aFractionOrExponentIsNotAnIntegerAndNamesItsField() {
        #expect(Self.violation(#"{"amount":100.000000000000000000001}"#) == .notAnInteger(path: "amount"))
        #expect(Self.violation(#"{"x":{"y":[1,2e3]}}"#) == .notAnInteger(path: "x.y[1]"))
    }

    static func violation(_ document: String) -> StrictJSON.Violation? {
        do {
            try StrictJSON.validate(Array(document.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func theEndpointsApplyTheRule() async throws {
        try await TestService().withRouter { client, _ in
            let raw: (String, String) async throws -> TestResponse = { path, body in
                try await client.execute(uri: path, method: .post, headers: [.authorization: "Bearer \(TestService.apiToken)"], body: ByteBuffer(string: body))
            }
            try RouterTests.expectProblem(try await raw("/v1/orders", #"{"amount":1,"currency":"EUR",}"#), .badRequest)
            try RouterTests.expectProblem(try await raw("/v1/orders", #"{"amount":1,"amount":2,"currency":"EUR"}"#), .badRequest)
            let fraction = try await raw("/v1/orders", #"{"amount":100.000000000000000000001,"currency":"EUR"}"#)
            try RouterTests.expectProblem(fraction, .unprocessableContent)
            #expect(try JSON(fraction.body)["field"].string == "amount")
            #expect(try await raw("/v1/orders", #"{"id":"s1","amount":100,"currency":"EUR"}"#).status == .created)
            try RouterTests.expectProblem(try await raw("/v1/orders/s1/transitions", #"{"status":"failed","status":"succeeded"}"#), .badRequest)
            // Nothing was applied by the refused document.
            #expect(try JSON(try await client.get("/v1/orders/s1").body)["status"].string == "initiated")
        }
    }

    @Test func aWronglyTypedFieldIsNamedAndTheDetailReadsWell() async throws {
        try await TestService().withRouter { client, _ in
            for body in [#"{"amount":"5","currency":"EUR"}"#, #"{"amount":5,"currency":7}"#, #"{"amount":5,"currency":"EUR","metadata":[]}"#] {
                let response = try await client.execute(uri: "/v1/orders", method: .post, headers: [.authorization: "Bearer \(TestService.apiToken)"], body: ByteBuffer(string: body))
                try RouterTests.expectProblem(response, .unprocessableContent)
                let problem = try JSON(response.body)
                #expect(problem["field"].string?.isEmpty == false, "\(body)")
                #expect(problem["detail"].string?.first?.isWhitespace == false, "\(body)")
            }
        }
    }

    @Test func theDemoProviderChecksReasonsLikeTheRealEndpoints() async throws {
        try await TestService(configure: { $0.demo = true }).withRouter { client, _ in
            let created = try JSON(try await client.post("/demo/orders", json: [:], headers: [:]).body)
            let id = try #require(created["id"].string)
            for reason in ["nul\u{0}inside", String(repeating: "r", count: 60_000)] {
                let response = try await client.post("/demo/orders/\(id)/provider", json: ["status": "failed", "reason": reason], headers: [:])
                #expect(response.status == .unprocessableContent || response.status == .badRequest, "\(response.status)")
            }
            #expect(try JSON(try await client.get("/v1/orders/\(id)").body)["status"].string == "initiated")
        }
    }
}
