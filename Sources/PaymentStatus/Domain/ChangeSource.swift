/// Who reported a status change: the merchant's back end or the payment provider.
public enum ChangeSource: String, Sendable, Codable {
    case api
    case webhook
}
