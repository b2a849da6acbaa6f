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

/// `POST /v1/webhooks/payment-status`, as the provider sends it.
struct WebhookBody: Decodable {
    var eventID: String
    var orderID: String
    var status: String
    var occurredAt: String?
    var reason: String?

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id"
        case orderID = "order_id"
        case status
        case occurredAt = "occurred_at"
        case reason
    }

    func change() throws(InputError) -> StatusChange {
        try Identifier.validateEventID(eventID)
        try Identifier.validateOrderID(orderID)
        guard let status = PaymentStatus(rawValue: status) else {
            throw InputError(field: "status", message: "must be one of initiated, processing, succeeded, failed")
        }
        var occurred: Timestamp?
        if let occurredAt {
            guard let time = Timestamp(rfc3339: occurredAt) else {
                throw InputError(field: "occurred_at", message: "must be an RFC 3339 date-time")
            }
            occurred = time
        }
        if let reason { try Identifier.validateReason(reason) }
        return StatusChange(orderID: orderID, status: status, source: .webhook, eventID: eventID, reason: reason, occurredAt: occurred)
    }
}

/// `POST /v1/webhook-endpoints`
struct CreateWebhookEndpointBody: Decodable {
    var url: String
    var description: String?

    static let maxDescription = 512

    func validatedDescription() throws(InputError) -> String? {
        guard let description else { return nil }
        guard description.utf8.count <= Self.maxDescription else {
            throw InputError(field: "description", message: "must be at most \(Self.maxDescription) bytes")
        }
        return description
    }
}

/// `POST /v1/webhook-endpoints/{id}/recover`
struct RecoverMessagesBody: Decodable {
    var since: String

    func time() throws(InputError) -> Timestamp {
        guard let time = Timestamp(rfc3339: since) else { throw InputError(field: "since", message: "must be an RFC 3339 date-time") }
        return time
    }
}
