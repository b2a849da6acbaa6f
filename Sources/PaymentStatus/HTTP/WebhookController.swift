import Hummingbird
import Logging
import NIOCore

/// `POST /v1/webhooks/payment-status`: signed status reports from the payment
/// provider, which retries anything but 2xx and delivers late, twice and out
/// of order. Every report that is understood is answered 200 with what
/// became of it, so that the provider stops retrying.
struct WebhookController {
    let service: OrderService
    let credentials: Credentials
    /// How far the signature's timestamp may be from now, either way.
    let tolerance: Duration
    let metrics: ServiceMetrics

    func addRoutes(to router: Router<AppRequestContext>) {
        router.post("v1/webhooks/payment-status", use: receive)
    }

    @Sendable func receive(_ request: Request, context: AppRequestContext) async throws -> Response {
        do {
            let (response, outcome) = try await process(request, logger: context.logger)
            metrics.webhookAnswered(outcome)
            return response
        } catch let error as APIError {
            switch error.status {
            case .unauthorized: metrics.webhookAnswered(.badSignature)
            case .badRequest: metrics.webhookAnswered(.malformed)
            case .notFound: metrics.webhookAnswered(.unknownOrder)
            default: break
            }
            throw error
        }
    }

    private func process(_ request: Request, logger: Logger) async throws -> (Response, WebhookOutcome) {
        // Without a signature there is nothing to check the body against: refused unread.
        guard let header = request.headers[.paymentSignature] else {
            throw APIError.unauthorized("the Payment-Signature header is missing", challenge: nil)
        }
        // The signature covers the bytes as received: check it before parsing anything.
        let body = try await request.rawBody()
        guard let signature = WebhookSignature(header: header),
            signature.verify(
                body: body.readableBytesView, secrets: credentials.webhookSecrets,
                now: Timestamp.now().millisecondsSince1970 / 1000, tolerance: tolerance.components.seconds)
        else {
            throw APIError.unauthorized("the Payment-Signature is not valid for this body, or its timestamp is too old or too new", challenge: nil)
        }

        let change: StatusChange
        do {
            change = try decodeBody(WebhookBody.self, from: body).change()
        } catch let problem as BodyProblem {
            switch problem {
            case .malformed(let detail): throw APIError.malformed(detail)
            case .invalid(let error): throw APIError.malformed(error.description)
            }
        } catch let error as InputError {
            throw APIError.malformed(error.description)
        }

        return try Self.answer(try await service.apply(change), to: change, logger: logger)
    }

    /// The provider's answer for what applying `change` did.
    static func answer(_ outcome: ChangeOutcome, to change: StatusChange, logger: Logger) throws -> (Response, WebhookOutcome) {
        switch outcome {
        case .applied(_, let event):
            var json = JSONWriter(capacity: 320)
            json.beginObject()
            json.key("applied"); json.bool(true)
            json.key("event"); WireFormat.write(event, to: &json)
            json.endObject()
            return (Self.ok(json.buffer), .applied)
        case .duplicate:
            return (Self.ok(Self.notApplied("duplicate")), .duplicate)
        case .refused(.conflictingTerminal, let order):
            logger.warning(
                "webhook contradicts a final status",
                metadata: [
                    "order_id": "\(order.id)", "current_status": "\(order.status.rawValue)",
                    "reported_status": "\(change.status.rawValue)", "event_id": "\(change.eventID ?? "")",
                ])
            return (Self.ok(Self.notApplied("conflict")), .conflict)
        case .refused:
            return (Self.ok(Self.notApplied("stale")), .stale)
        case .orderNotFound:
            // 404 makes the provider retry: the order may not be committed yet.
            throw APIError.orderNotFound(change.orderID)
        }
    }

    /// `{"applied": false, "reason": "<why>"}`
    private static func notApplied(_ reason: StaticString) -> ByteBuffer {
        var json = JSONWriter(capacity: 48)
        json.beginObject()
        json.key("applied"); json.bool(false)
        json.key("reason"); json.string(String(describing: reason))
        json.endObject()
        return json.buffer
    }

    private static func ok(_ body: ByteBuffer) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
}
