/// A validated request to create an order. Building one is the only way to
/// get past the input rules, so the store never sees an invalid order.
public struct OrderDraft: Sendable, Equatable {
    public var id: String?
    public var amount: Int64
    public var currency: String
    public var metadata: [String: String]

    /// Checks every field against the contract and reports the first broken rule.
    public init(id: String?, amount: Int64, currency: String, metadata: [String: String]?) throws(InputError) {
        if let id { try Identifier.validateOrderID(id) }
        guard amount > 0 else {
            throw InputError(field: "amount", message: "must be an integer number of minor units greater than 0")
        }
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else {
            throw InputError(field: "currency", message: "must be three uppercase letters (ISO 4217)")
        }
        let metadata = metadata ?? [:]
        guard metadata.count <= Self.maxMetadataEntries else {
            throw InputError(field: "metadata", message: "may hold at most \(Self.maxMetadataEntries) entries")
        }
        self.id = id
        self.amount = amount
        self.currency = currency
        self.metadata = metadata
    }

    /// Metadata is for references, not documents; the 64 KiB body limit bounds the rest.
    public static let maxMetadataEntries = 50

    /// Whether a retry with this draft matches an order created earlier:
    /// the same id with the same amount and currency is the same order.
    public func matches(_ order: Order) -> Bool {
        order.amount == amount && order.currency == currency
    }
}
