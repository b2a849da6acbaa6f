/// `POST /v1/orders`
struct CreateOrderBody: Decodable {
    var id: String?
    var amount: Int64
    var currency: String
    var metadata: [String: String]?

    func draft() throws(InputError) -> OrderDraft {
        try OrderDraft(id: id, amount: amount, currency: currency, metadata: metadata)
    }
}

/// `POST /v1/orders/{id}/transitions`
struct TransitionBody: Decodable {
    var status: String
    var eventID: String?
    var reason: String?

    enum CodingKeys: String, CodingKey {
        case status
        case eventID = "event_id"
        case reason
    }

    func change(orderID: String) throws(InputError) -> StatusChange {
        guard let status = PaymentStatus(rawValue: status) else {
            throw InputError(field: "status", message: "must be one of initiated, processing, succeeded, failed")
        }
        if let eventID { try Identifier.validateEventID(eventID) }
        if let reason { try Identifier.validateReason(reason) }
        return StatusChange(orderID: orderID, status: status, source: .api, eventID: eventID, reason: reason)
    }
}
