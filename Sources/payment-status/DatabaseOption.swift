import ArgumentParser
import PaymentStatus

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `--database` as the operator commands read it: the flag, else `PAYMENT_DB`,
/// else the default `serve` uses.
enum DatabaseOption {
    static func resolve(_ flag: String?) throws -> DatabaseLocation {
        if let flag { return try DatabaseLocation(flag, from: "--database") }
        if let text = ProcessInfo.processInfo.environment["PAYMENT_DB"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            return try DatabaseLocation(text, from: "PAYMENT_DB")
        }
        return AppConfiguration().database
    }
}

/// An operator command that cannot do what was asked; ArgumentParser prints
/// the message and the process exits 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
