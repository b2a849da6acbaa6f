import Hummingbird
import Logging

/// Endpoints for the demo checkout page at `/`, present only when the
/// service runs with `--demo`: they create an order and play the payment
/// provider without any credential, so they must never run in production.
struct DemoController {
    let service: OrderService
    let credentials: Credentials

    func addRoutes(to router: Router<AppRequestContext>) {
        router.post("demo/orders", use: createOrder)
        router.post("demo/orders/{order_id}/provider", use: provider)
    }

    struct CreateBody: Decodable {
        var amount: Int64?
        var currency: String?
    }

    struct ProviderBody: Decodable {
        var status: String
        var reason: String?
    }

    /// `POST /demo/orders`: what a merchant back end would do, done for the page.
    @Sendable func createOrder(_ request: Request, context: AppRequestContext) async throws -> Response {
        let buffer = try await request.rawBody()
        let draft = try merchantCommand(CreateBody.self, from: buffer.readableBytes == 0 ? ByteBuffer(string: "{}") : buffer) {
            body throws(InputError) in
            try OrderDraft(id: nil, amount: body.amount ?? 1999, currency: body.currency ?? "EUR", metadata: ["source": "demo"])
        }
        guard case .created(let order, _) = try await service.create(draft) else {
            throw APIError(.internalServerError, detail: "a generated order id was already taken")
        }
        return Response(
            status: .created, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: WireFormat.encode(order, stream: credentials.streamGrant(forOrder: order.id))))
    }

    /// `POST /demo/orders/{order_id}/provider`: what the provider's webhook would report.
    @Sendable func provider(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("order_id")
        let change = try merchantCommand(ProviderBody.self, from: try await request.rawBody()) { body throws(InputError) in
            guard let status = PaymentStatus(rawValue: body.status) else {
                throw InputError(field: "status", message: "must be one of initiated, processing, succeeded, failed")
            }
            // The same rule as the real endpoints' reasons, not a quiet cut.
            if let reason = body.reason { try Identifier.validateReason(reason) }
            return StatusChange(
                orderID: id, status: status, source: .webhook, eventID: "demo_\(OrderService.generateOrderID().dropFirst(4))",
                reason: body.reason)
        }
        return try WebhookController.answer(try await service.apply(change), to: change, logger: context.logger).0
    }
}
