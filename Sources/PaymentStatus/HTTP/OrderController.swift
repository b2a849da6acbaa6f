import Hummingbird
import NIOCore

/// `POST /v1/orders`, `GET /v1/orders/{order_id}`, `POST /v1/orders/{order_id}/transitions`,
/// `POST /v1/orders/{order_id}/stream-token`.
struct OrderController {
    let service: OrderService
    let credentials: Credentials

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post(use: create)
        group.get("{order_id}", use: get)
        group.post("{order_id}/transitions", use: transition)
        group.post("{order_id}/stream-token", use: mintStreamToken)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let draft = try merchantCommand(CreateOrderBody.self, from: try await request.rawBody()) { body throws(InputError) in
            try body.draft()
        }
        switch try await service.create(draft) {
        case .created(let order, _):
            return json(.created, orderBody(order))
        case .existing(let order):
            var response = json(.ok, orderBody(order))
            response.headers[.idempotentReplayed] = "true"
            return response
        case .conflict(let order):
            var error = APIError(
                .conflict, type: APIError.problemType("order-exists"),
                detail: "order '\(order.id)' already exists with a different amount or currency")
            error.extensions = [("order_id", order.id)]
            throw error
        }
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("order_id")
        guard let (order, events) = try await service.store.orderWithEvents(id: id) else { throw APIError.orderNotFound(id) }
        var json = JSONWriter(capacity: 1024)
        json.beginObject()
        WireFormat.writeFields(of: order, stream: credentials.streamGrant(forOrder: order.id), to: &json)
        json.key("events")
        json.beginArray()
        for event in events { WireFormat.write(event, to: &json) }
        json.endArray()
        json.endObject()
        return self.json(.ok, json.buffer)
    }

    @Sendable func transition(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("order_id")
        let change = try merchantCommand(TransitionBody.self, from: try await request.rawBody()) { body throws(InputError) in
            try body.change(orderID: id)
        }
        switch try await service.apply(change) {
        case .applied(let order, let event):
            return json(.ok, transitionBody(order: order, event: event))
        case .duplicate(let order, let original):
            var response = json(.ok, transitionBody(order: order.asOf(original), event: original))
            response.headers[.idempotentReplayed] = "true"
            return response
        case .refused(_, let order):
            var error = APIError(
                .conflict, type: APIError.problemType("transition-not-allowed"),
                detail: "order '\(order.id)' is \(order.status.rawValue) and cannot move to \(change.status.rawValue)")
            error.extensions = [("current_status", order.status.rawValue)]
            throw error
        case .orderNotFound:
            throw APIError.orderNotFound(id)
        }
    }

    /// `POST /v1/orders/{order_id}/stream-token`: a fresh token for a page whose
    /// token expired; tokens given out before keep working until their own expiry.
    @Sendable func mintStreamToken(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("order_id")
        guard try await service.store.order(id: id) != nil else { throw APIError.orderNotFound(id) }
        return json(.ok, WireFormat.encode(credentials.streamGrant(forOrder: id), orderID: id))
    }

    private func orderBody(_ order: Order) -> ByteBuffer {
        WireFormat.encode(order, stream: credentials.streamGrant(forOrder: order.id))
    }

    /// `{"applied": true, "order", "event"}`
    private func transitionBody(order: Order, event: PaymentEvent) -> ByteBuffer {
        var json = JSONWriter(capacity: 768)
        json.beginObject()
        json.key("applied"); json.bool(true)
        json.key("order"); json.raw(orderBody(order))
        json.key("event"); WireFormat.write(event, to: &json)
        json.endObject()
        return json.buffer
    }

    private func json(_ status: HTTPResponse.Status, _ body: ByteBuffer) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
}
