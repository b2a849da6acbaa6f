import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
@testable import PaymentStatus

/// A service on a fresh database (a real SQLite file in a temporary folder,
/// or a new PostgreSQL database), with known secrets.
struct TestService {
    static let apiToken = "test-api-token"
    static let migrations = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("migrations").path

    let folder: String
    var configuration: AppConfiguration
    let kind: StoreKind

    init(
        store kind: StoreKind = .sqlite, heartbeat: Duration = .seconds(15), streamTimeout: Duration = .seconds(600),
        configure: (inout AppConfiguration) -> Void = { _ in }
    ) throws {
        self.kind = kind
        folder = try TemporaryFolder().path
        var configuration = AppConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.database = .sqlite(path: folder + "/payments.sqlite")
        configuration.migrationsDirectory = Self.migrations
        configuration.apiToken = Self.apiToken
        configuration.streamSecret = "test-stream-secret"
        configuration.webhookSecrets = ["test-webhook-secret"]
        configuration.heartbeatInterval = heartbeat
        configuration.streamTimeout = streamTimeout
        // A test's client holds one keep-alive connection for the whole test,
        // which on a loaded machine can sit idle past the service's 30 s and be
        // closed under it ("I/O on closed channel"). Tests of the idle timeout set their own.
        configuration.idleTimeout = .seconds(600)
        configure(&configuration)
        self.configuration = configuration
    }

    static var logger: Logger {
        var logger = Logger(label: "payment-status-tests")
        logger.logLevel = .warning
        return logger
    }

    /// Opens the services and runs `test` against the router (no sockets).
    func withRouter<T: Sendable>(_ test: @escaping @Sendable (any TestClientProtocol, AppServices) async throws -> T) async throws -> T {
        try await withDatabase { configuration in
            let services = try await AppServices.open(configuration, logger: Self.logger)
            do {
                let result = try await buildApplication(services, logger: Self.logger).test(.router) { client in
                    try await test(client, services)
                }
                try? await services.store.close()  // a test may have closed it already
                return result
            } catch {
                try? await services.store.close()
                throw error
            }
        }
    }

    /// Opens the services and runs `test` against the real server on a loopback port.
    func withLiveServer<T: Sendable>(_ test: @escaping @Sendable (LiveClient, AppServices) async throws -> T) async throws -> T {
        try await withDatabase { configuration in
            let services = try await AppServices.open(configuration, logger: Self.logger)
            return try await buildApplication(services, logger: Self.logger).test(.live) { client in
                try await test(LiveClient(client: client, port: client.port!), services)
            }
        }
    }

    /// The configuration on a fresh database of the service's kind, removed afterwards.
    func withDatabase<T>(_ body: (AppConfiguration) async throws -> T) async throws -> T {
        var configuration = configuration
        var database: TestDatabase?
        if kind == .postgres {
            database = try await TestDatabase.make(.postgres)
            configuration.database = database!.location
        }
        do {
            let result = try await body(configuration)
            await database?.remove()
            cleanUp()
            return result
        } catch {
            await database?.remove()
            cleanUp()
            throw error
        }
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// The HummingbirdTesting client plus the port, for stream connections.
struct LiveClient: Sendable {
    let client: any TestClientProtocol
    let port: Int

    func openStream(_ path: String, headers: [(String, String)] = []) async throws -> SSEConnection {
        try await SSEConnection.open(port: port, path: path, headers: headers)
    }

    /// One request on a connection of its own.
    func once(_ path: String, method: HTTPRequest.Method, headers: HTTPFields = [:]) async throws -> TestClient.Response {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await client.execute(.init(path, method: method, headers: headers))
        }
    }
}

/// Requests every test makes, on either kind of client.
extension TestClientProtocol {
    static var auth: HTTPFields { [.authorization: "Bearer \(TestService.apiToken)"] }

    @discardableResult
    func createOrder(
        id: String? = nil, amount: Int = 1999, currency: String = "EUR", metadata: [String: String]? = nil
    ) async throws -> JSON {
        var body: [String: Any] = ["amount": amount, "currency": currency]
        if let id { body["id"] = id }
        if let metadata { body["metadata"] = metadata }
        let response = try await post("/v1/orders", json: body)
        guard response.status == .created || response.status == .ok else {
            throw TestFailure("create answered \(response.status): \(String(buffer: response.body))")
        }
        return try JSON(response.body)
    }

    func post(_ path: String, json: [String: Any], headers: HTTPFields = Self.auth) async throws -> TestResponse {
        let data = try JSONSerialization.data(withJSONObject: json)
        return try await execute(uri: path, method: .post, headers: headers, body: ByteBuffer(bytes: data))
    }

    func get(_ path: String, headers: HTTPFields = Self.auth) async throws -> TestResponse {
        try await execute(uri: path, method: .get, headers: headers)
    }

    /// Posts a transition and returns the response.
    @discardableResult
    func transition(_ orderID: String, to status: String, eventID: String? = nil, reason: String? = nil) async throws -> TestResponse {
        var body: [String: Any] = ["status": status]
        if let eventID { body["event_id"] = eventID }
        if let reason { body["reason"] = reason }
        return try await post("/v1/orders/\(orderID)/transitions", json: body)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Loose JSON access for assertions.
struct JSON: @unchecked Sendable {
    let value: Any

    init(_ value: Any) { self.value = value }

    init(_ buffer: ByteBuffer) throws {
        value = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed])
    }

    init(_ text: String) throws {
        value = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    /// A body the live client may not have (`TestClient.Response.body`): none is no JSON.
    init(_ buffer: ByteBuffer?) throws {
        try self.init(buffer ?? ByteBuffer())
    }

    subscript(key: String) -> JSON { JSON((value as? [String: Any])?[key] ?? NSNull()) }
    subscript(index: Int) -> JSON { JSON((value as? [Any]).flatMap { index < $0.count ? $0[index] : nil } ?? NSNull()) }

    var string: String? { value as? String }
    var int: Int? { (value as? NSNumber).map(\.intValue) }
    var bool: Bool? { value as? Bool }
    var array: [JSON] { (value as? [Any])?.map(JSON.init) ?? [] }
    var keys: Set<String> { Set((value as? [String: Any])?.keys.map { $0 } ?? []) }
    var isNull: Bool { value is NSNull }
}

extension AppServices {
    /// The SQLite store, for tests that reach under the store protocol.
    var sqlite: SQLiteStore { store as! SQLiteStore }
}
