import ArgumentParser
import Foundation
import PaymentStatus

/// The URL an operator command talks to, checked before any connection is
/// tried: the HTTP client traps on a port that does not fit in 16 bits.
enum CommandURL {
    static func validated(_ text: String, option: String) throws -> String {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw ValidationError("\(option) must be an http:// or https:// URL with a host, got '\(text.prefix(200))'")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw ValidationError("\(option) has port \(port); a port is 1-65535")
        }
        return text
    }

    /// `PORT` from the environment as `serve` reads it (an invalid one is an error, not 8080).
    static func environmentPort() throws -> Int {
        guard let text = ProcessInfo.processInfo.environment["PORT"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
            return 8080
        }
        let port = try AppConfiguration.port(text, from: "PORT")
        guard port > 0 else { throw ConfigurationError(setting: "PORT", message: "must be a port number (1-65535) to connect to, got '\(text)'") }
        return port
    }
}
