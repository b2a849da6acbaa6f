import Testing
@testable import PaymentStatus

@Suite("Generated identifiers")
struct GeneratedIDTests {
    @Test func randomIDsHaveTheirLengthAndAlphabetAndDoNotRepeat() {
        let alphabet = Set(GeneratedID.alphabet)
        var seen = Set<String>()
        for length in [1, 7, 8, 9, 24] {
            for _ in 0..<500 {
                let id = GeneratedID.random(length)
                #expect(id.utf8.count == length)
                #expect(id.utf8.allSatisfy(alphabet.contains))
                if length == 24 { seen.insert(id) }
            }
        }
        #expect(seen.count == 500)
    }

    /// Every character is drawn as often as the others (no bias from the
    /// byte-to-character mapping): 62 × 5,000 draws, each count within 8 %
    /// (more than five standard deviations; a plain `byte % 62` would give
    /// the first eight characters 25 % more).
    @Test func randomCharactersAreEquallyLikely() {
        var counts = [UInt8: Int]()
        for byte in GeneratedID.random(62 * 5000).utf8 { counts[byte, default: 0] += 1 }
        #expect(counts.count == 62)
        #expect(counts.values.allSatisfy { (4600...5400).contains($0) }, "\(counts.values.sorted())")
    }

    /// Message ids sort as the times they were made at, so the outbox's key
    /// grows at its end; at the same millisecond they still differ.
    @Test func timeOrderedIDsSortAsTheirTimes() {
        let times: [Int64] = [0, 1, 61, 62, 3843, 1_764_633_600_000, 1_764_633_600_001, 1_800_000_000_000, 218_340_105_584_895]
        let ids = times.map { GeneratedID.timeOrdered(at: Timestamp(millisecondsSince1970: $0), randomCount: 16) }
        #expect(ids.allSatisfy { $0.utf8.count == 24 })
        #expect(ids == ids.sorted(), "\(ids)")
        #expect(Set(ids.map { $0.prefix(8) }).count == times.count)
        let now = Timestamp.now()
        #expect(GeneratedID.timeOrdered(at: now, randomCount: 16) != GeneratedID.timeOrdered(at: now, randomCount: 16))
        #expect(OutboundMessage.generateID(at: now).hasPrefix("msg_"))
    }
}
