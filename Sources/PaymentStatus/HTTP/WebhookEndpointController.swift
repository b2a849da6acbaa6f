import Hummingbird
import NIOCore

/// The merchant's webhook endpoints (`/v1/webhook-endpoints…`): register,
/// list, read, delete, rotate the secret, inspect messages, retry one,
/// recover the failed. These are the OUTBOUND webhooks; the provider's
/// inbound ones are `WebhookController`.
struct WebhookEndpointController {
    let store: any WebhookStore
    let policy: WebhookURLPolicy
    /// Woken when a retry or recovery queued messages, so they go at once.
    let delivery: WebhookDeliveryService?

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post(use: create)
        group.get(use: list)
        group.get("{endpoint_id}", use: get)
        group.delete("{endpoint_id}", use: delete)
        group.post("{endpoint_id}/rotate-secret", use: rotateSecret)
        group.get("{endpoint_id}/messages", use: messages)
        group.post("{endpoint_id}/messages/{message_id}/retry", use: retry)
        group.post("{endpoint_id}/recover", use: recover)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let body = try merchantCommand(CreateWebhookEndpointBody.self, from: try await request.rawBody()) { $0 }
        let description: String?
        do { description = try body.validatedDescription() } catch { throw APIError.invalid(error) }
        do {
            _ = try await policy.check(body.url)
        } catch {
            var problem = APIError(.unprocessableContent, type: APIError.problemType("webhook-url-refused"), detail: error.description)
            problem.extensions = [("field", "url")]
            throw problem
        }
        let endpoint = WebhookEndpoint(
            id: WebhookEndpoint.generateID(), url: body.url, description: description, createdAt: .now(),
            secret: WebhookEndpoint.generateSecret())
        try await store.insertEndpoint(endpoint)
        delivery?.wakeForEndpoints()
        return json(.created, WireFormat.encode(endpoint, showingSecret: true))
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        json(.ok, WireFormat.encode(endpoints: try await store.endpoints()))
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("endpoint_id")
        guard let endpoint = try await store.endpoint(id: id) else { throw Self.endpointNotFound(id) }
        return json(.ok, WireFormat.encode(endpoint, showingSecret: false))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("endpoint_id")
        guard try await store.deleteEndpoint(id: id) else { throw Self.endpointNotFound(id) }
        return Response(status: .noContent)
    }

    /// A new secret; the one it replaces keeps signing for 24 h, so the
    /// merchant can roll its verifier over without missing a delivery.
    @Sendable func rotateSecret(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("endpoint_id")
        guard
            let endpoint = try await store.rotateSecret(
                endpointID: id, to: WebhookEndpoint.generateSecret(),
                previousExpiresAt: Timestamp.now().adding(WebhookEndpoint.rotationOverlap))
        else { throw Self.endpointNotFound(id) }
        return json(.ok, WireFormat.encode(endpoint, showingSecret: true))
    }

    /// `?status=pending|delivered|failed` and `?limit=` (1–1000, 100), newest first.
    @Sendable func messages(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("endpoint_id")
        var status: WebhookMessageStatus?
        if let text = request.uri.queryParameters["status"] {
            guard let parsed = WebhookMessageStatus(rawValue: String(text)) else {
                throw APIError.malformed("status must be one of pending, delivered, failed, got '\(text.prefix(40))'")
            }
            status = parsed
        }
        let limit = try FeedController.limit(of: request)
        guard let messages = try await store.messages(endpointID: id, status: status, limit: limit) else {
            throw Self.endpointNotFound(id)
        }
        return json(.ok, WireFormat.encode(messages: messages))
    }

    /// One more attempt of one message, now, whatever its status.
    @Sendable func retry(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("endpoint_id")
        let messageID = try context.parameters.require("message_id")
        guard try await store.retryMessage(endpointID: id, messageID: messageID, now: .now()) else {
            if try await store.endpoint(id: id) == nil { throw Self.endpointNotFound(id) }
            throw APIError(
                .notFound, type: APIError.problemType("message-not-found"),
                detail: "endpoint '\(id.prefix(80))' has no message '\(messageID.prefix(80))'")
        }
        delivery?.wakeForEndpoints()
        return queued(1)
    }

    /// One more attempt of every failed message created since `since`.
    @Sendable func recover(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("endpoint_id")
        let since = try merchantCommand(RecoverMessagesBody.self, from: try await request.rawBody()) { body throws(InputError) in
            try body.time()
        }
        guard let count = try await store.recoverMessages(endpointID: id, since: since, now: .now()) else {
            throw Self.endpointNotFound(id)
        }
        delivery?.wakeForEndpoints()
        return queued(count)
    }

    /// 202 `{"queued": n}`: the messages are pending again and go out shortly.
    private func queued(_ count: Int) -> Response {
        var json = JSONWriter(capacity: 32)
        json.beginObject()
        json.key("queued"); json.integer(count)
        json.endObject()
        return self.json(.accepted, json.buffer)
    }

    static func endpointNotFound(_ id: String) -> APIError {
        APIError(.notFound, type: APIError.problemType("webhook-endpoint-not-found"), detail: "no webhook endpoint has the id '\(id.prefix(80))'")
    }

    private func json(_ status: HTTPResponse.Status, _ body: ByteBuffer) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
}
