import Foundation

/// A fresh folder under the system's temporary directory, for a test's
/// database files and working directory; `remove()` deletes it and all in it.
/// The one way tests make scratch space.
struct TemporaryFolder: Sendable {
    let path: String

    init(_ prefix: String = "payment-status-tests") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
