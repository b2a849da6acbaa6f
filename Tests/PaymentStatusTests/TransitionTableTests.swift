import Testing
@testable import PaymentStatus

@Suite("Transition table")
struct TransitionTableTests {
    /// Every (from, to) pair against API.md's table, written out in full so a
    /// change to the rules shows up here as a diff.
    static let expected: [PaymentStatus: [PaymentStatus: TransitionVerdict]] = [
        .initiated: [.initiated: .alreadyPassed, .processing: .allowed, .succeeded: .allowed, .failed: .allowed],
        .processing: [.initiated: .alreadyPassed, .processing: .alreadyPassed, .succeeded: .allowed, .failed: .allowed],
        .succeeded: [.initiated: .alreadyPassed, .processing: .alreadyPassed, .succeeded: .alreadyPassed, .failed: .conflictingTerminal],
        .failed: [.initiated: .alreadyPassed, .processing: .alreadyPassed, .succeeded: .conflictingTerminal, .failed: .alreadyPassed],
    ]

    @Test("every pair of statuses", arguments: PaymentStatus.allCases, PaymentStatus.allCases)
    func verdict(from: PaymentStatus, to: PaymentStatus) {
        #expect(from.verdict(movingTo: to) == Self.expected[from]![to]!)
    }

    @Test func terminalStatesAreSucceededAndFailed() {
        #expect(PaymentStatus.allCases.filter(\.isTerminal) == [.succeeded, .failed])
    }

    @Test func nothingLeavesATerminalState() {
        for terminal in PaymentStatus.allCases where terminal.isTerminal {
            for next in PaymentStatus.allCases {
                #expect(terminal.verdict(movingTo: next) != .allowed)
            }
        }
    }
}

@Suite("Input rules")
struct InputRuleTests {
    @Test(arguments: ["a", "order_1", "A-b_9", String(repeating: "x", count: 64)])
    func acceptsOrderIDs(_ id: String) throws {
        try Identifier.validateOrderID(id)
    }

    @Test(arguments: ["", String(repeating: "x", count: 65), "has space", "slash/", "dot.", "ümlaut", "semi;colon"])
    func rejectsOrderIDs(_ id: String) {
        #expect(throws: InputError.self) { try Identifier.validateOrderID(id) }
    }

    @Test func draftRules() throws {
        #expect(throws: InputError.self) { try OrderDraft(id: nil, amount: 0, currency: "EUR", metadata: nil) }
        #expect(throws: InputError.self) { try OrderDraft(id: nil, amount: -5, currency: "EUR", metadata: nil) }
        #expect(throws: InputError.self) { try OrderDraft(id: nil, amount: 5, currency: "eur", metadata: nil) }
        #expect(throws: InputError.self) { try OrderDraft(id: nil, amount: 5, currency: "EURO", metadata: nil) }
        #expect(throws: InputError.self) { try OrderDraft(id: nil, amount: 5, currency: "E1R", metadata: nil) }
        let draft = try OrderDraft(id: "abc", amount: 5, currency: "USD", metadata: nil)
        #expect(draft.metadata == [:])
    }

    @Test func eventIDsAndReasons() throws {
        try Identifier.validateEventID("evt_123:abc/def")
        #expect(throws: InputError.self) { try Identifier.validateEventID("") }
        #expect(throws: InputError.self) { try Identifier.validateEventID("a\nb") }
        #expect(throws: InputError.self) { try Identifier.validateReason(String(repeating: "r", count: 1001)) }
    }
}

@Suite("Timestamps")
struct TimestampTests {
    @Test func formatsRFC3339InUTCWithMilliseconds() {
        #expect(Timestamp(millisecondsSince1970: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(millisecondsSince1970: 1_795_590_239_824).rfc3339 == "2026-11-25T07:03:59.824Z")
        #expect(Timestamp(millisecondsSince1970: 951_782_400_001).rfc3339 == "2000-02-29T00:00:00.001Z")
    }

    @Test func parsesWhatItFormatsAndOffsets() {
        for ms: Int64 in [0, 1, 951_782_400_001, 1_795_590_239_824, 4_102_444_799_999] {
            let time = Timestamp(millisecondsSince1970: ms)
            #expect(Timestamp(rfc3339: time.rfc3339) == time)
        }
        #expect(Timestamp(rfc3339: "2026-11-25T08:03:59.824+01:00")?.millisecondsSince1970 == 1_795_590_239_824)
        #expect(Timestamp(rfc3339: "2026-11-25T07:03:59Z")?.millisecondsSince1970 == 1_795_590_239_000)
        #expect(Timestamp(rfc3339: "2026-11-25") == nil)
        #expect(Timestamp(rfc3339: "2026-13-25T07:03:59Z") == nil)
        #expect(Timestamp(rfc3339: "2026-11-25T07:03:59") == nil)
    }
}
