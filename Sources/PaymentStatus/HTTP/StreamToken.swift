import Crypto

/// What a presented stream token turned out to be.
enum StreamTokenCheck: Equatable {
    case valid
    /// Made with the server's secret for this order, but past its expiry:
    /// the page should ask its merchant for a fresh one.
    case expired
    /// Not made with the server's secret, or for another order.
    case invalid
}

/// The stream token's format: `<expiry, Unix seconds>.<base64url MAC>`, the
/// MAC being HMAC-SHA256 under the stream secret of `v2.<order id>.<expiry>`.
/// The expiry travels in the token, so checking it needs no storage; it is
/// covered by the MAC, so it cannot be moved.
///
/// Tokens issued before tokens expired were the bare base64url MAC of the
/// order id, with no dot. The first start of a version that issues expiring
/// tokens records a cut-off one token lifetime ahead (`StoredName.legacyStreamTokensUntil`):
/// until then such a token is still accepted, so pages open across the
/// upgrade keep working; after it, it is answered as expired.
extension Credentials {
    /// A fresh token for the order, good for `streamTokenLifetime` from `now`.
    func streamGrant(forOrder orderID: String, now: Timestamp = .now()) -> StreamGrant {
        let lifetimeSeconds = streamTokenLifetime.components.seconds
        // Rounded up to the next whole second: a token never lives less than its lifetime.
        let expiry = (now.millisecondsSince1970 + 999) / 1000 + max(lifetimeSeconds, 1)
        let mac = HMAC<SHA256>.authenticationCode(for: Self.signedBytes(orderID: orderID, expiry: expiry), using: streamKey)
        return StreamGrant(
            token: String(expiry) + "." + Base64URL.encode(Array(mac)),
            expiresAt: Timestamp(millisecondsSince1970: expiry * 1000))
    }

    /// A fresh token for the order (see `streamGrant`).
    public func streamToken(forOrder orderID: String) -> String {
        streamGrant(forOrder: orderID).token
    }

    /// Checks a token for the order: the MAC first and in constant time, so a
    /// forged token is `invalid` whatever expiry it claims.
    func checkStreamToken(_ token: Substring, forOrder orderID: String, now: Timestamp = .now()) -> StreamTokenCheck {
        guard let dot = token.firstIndex(of: ".") else { return checkLegacyStreamToken(token, forOrder: orderID, now: now) }
        let expiryText = token[..<dot]
        guard expiryText.utf8.count <= 12, let expiry = Int64(expiryText), expiry >= 0,
            let mac = Base64URL.decode(token[token.index(after: dot)...]), mac.count == SHA256.byteCount,
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Self.signedBytes(orderID: orderID, expiry: expiry), using: streamKey)
        else { return .invalid }
        return now.millisecondsSince1970 < expiry * 1000 ? .valid : .expired
    }

    /// The token form that carried no expiry: base64url(HMAC-SHA256(secret, order id)).
    private func checkLegacyStreamToken(_ token: Substring, forOrder orderID: String, now: Timestamp) -> StreamTokenCheck {
        guard let mac = Base64URL.decode(token), mac.count == SHA256.byteCount,
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array(orderID.utf8), using: streamKey)
        else { return .invalid }
        guard let until = legacyStreamTokensUntil, now < until else { return .expired }
        return .valid
    }

    private static func signedBytes(orderID: String, expiry: Int64) -> [UInt8] {
        Array("v2.\(orderID).\(expiry)".utf8)
    }
}
