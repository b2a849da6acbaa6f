import Testing
@testable import PaymentStatus

/// Which addresses count as public: what stands between a merchant's URL and
/// the service's own network.
@Suite("Webhook URL addresses")
struct NetworkAddressTests {
    @Test(arguments: [
        "127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "0.1.2.3", "224.0.0.251", "239.255.255.250", "240.0.0.1", "255.255.255.255",
        "192.0.0.8", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1",
        "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:8.8.8.8", "::127.0.0.1", "fe80::1", "febf::1",
        "fc00::1", "fdff::1", "ff02::1", "64:ff9b::a00:1", "2001:db8::1", "2001::1", "2002:7f00:1::1", "100::1", "fec0::1",
    ])
    func nonPublicAddressesAreNamed(_ text: String) throws {
        let address = try #require(NetworkAddress(literal: text))
        #expect(address.nonPublicKind != nil, "\(text) passed as public")
    }

    @Test(arguments: ["8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "2a00:1450::1"])
    func publicAddressesPass(_ text: String) throws {
        let address = try #require(NetworkAddress(literal: text))
        #expect(address.nonPublicKind == nil, "\(text): \(address.nonPublicKind ?? "")")
    }

    @Test func onlyDottedQuadsAndIPv6AreLiterals() {
        #expect(NetworkAddress(literal: "127.1") == nil)
        #expect(NetworkAddress(literal: "2130706433") == nil)
        #expect(NetworkAddress(literal: "example.com") == nil)
        #expect(NetworkAddress(literal: "::ffff:1.2.3.4")?.description == "::ffff:1.2.3.4")
    }

    /// Other spellings of an address are resolved, and so still refused.
    @Test(arguments: ["127.1", "2130706433", "0x7f.0.0.1", "localhost"])
    func otherSpellingsOfLoopbackAreRefusedOnceResolved(_ host: String) async throws {
        let policy = WebhookURLPolicy(allowHTTP: true)
        await #expect(throws: URLRefused.self) { try await policy.check("http://\(host)/hooks") }
        _ = try await WebhookURLPolicy(allowHTTP: true, allowPrivateNetworks: true).check("http://\(host)/hooks")
    }
}
