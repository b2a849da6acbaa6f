#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where the service keeps its data: a SQLite file (the embedded default)
/// or a PostgreSQL database shared by several instances.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    /// A `postgres://` or `postgresql://` URL, or else a SQLite file path.
    public init(_ text: String, from source: String) throws(ConfigurationError) {
        let lowered = text.lowercased()
        if lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") {
            self = .postgres(try PostgresLocation(url: text, from: source))
        } else {
            self = .sqlite(path: text)
        }
    }

    /// Safe to print: a PostgreSQL password is never shown.
    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let location): location.description
        }
    }
}

/// A PostgreSQL server and database, from
/// `postgres://user:password@host:port/database?sslmode=…`.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    /// TLS as libpq's `sslmode` names it: `prefer` (the default) tries TLS
    /// and falls back to plain text, `require` insists on TLS with a
    /// certificate the system trusts, `disable` never tries.
    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(host: String, port: Int = 5432, username: String, password: String?, database: String, tls: TLSMode = .prefer) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    public init(url text: String, from source: String) throws(ConfigurationError) {
        func invalid(_ why: String) -> ConfigurationError {
            ConfigurationError(setting: source, message: "is not a usable PostgreSQL URL (postgres://user:password@host:port/database): \(why)")
        }
        guard let components = URLComponents(string: text) else { throw invalid("it does not parse") }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        guard let username = components.user, !username.isEmpty else { throw invalid("no user") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw invalid("no database name") }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw invalid("port \(port)") }
        var tls = TLSMode.prefer
        for item in components.queryItems ?? [] {
            guard item.name == "sslmode" else { throw invalid("unknown parameter \(item.name)") }
            guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                throw invalid("sslmode must be disable, prefer or require")
            }
            tls = mode
        }
        self.init(
            host: host, port: port, username: username, password: components.password, database: database, tls: tls)
    }

    public var description: String {
        "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
    }
}
