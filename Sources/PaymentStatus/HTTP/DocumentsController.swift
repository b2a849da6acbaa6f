import Foundation
import Hummingbird

/// The files the service serves from its resources, read once at start:
/// `GET /` (the demo checkout page), `GET /openapi.yaml` (the contract), and
/// the browser client `GET /client/payment-status.js` with its types
/// `GET /client/payment-status.d.ts`.
struct DocumentsController {
    let demoPage: StaticDocument
    let openAPI: StaticDocument
    let clientModule: StaticDocument
    let clientTypes: StaticDocument

    /// How long a browser may use its copy of the client before revalidating
    /// it (by ETag): short, so that a deploy reaches checkout pages soon.
    static let clientCacheControl = "public, max-age=300"

    /// Reads the resources; fails at start-up, not at the first request, when they are missing.
    init() throws {
        func load(_ name: String, _ ext: String, _ folder: String? = nil) throws -> [UInt8] {
            guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: folder),
                let data = FileManager.default.contents(atPath: url.path)
            else {
                throw ConfigurationError(setting: "resources", message: "\(folder.map { $0 + "/" } ?? "")\(name).\(ext) is missing from the resource bundle")
            }
            return Array(data)
        }
        demoPage = StaticDocument(bytes: try load("index", "html", "demo"), contentType: "text/html; charset=utf-8")
        openAPI = StaticDocument(bytes: try load("openapi", "yaml"), contentType: "application/yaml")
        clientModule = StaticDocument(
            bytes: try load("payment-status", "js", "client"), contentType: "text/javascript; charset=utf-8",
            cacheControl: Self.clientCacheControl)
        clientTypes = StaticDocument(
            bytes: try load("payment-status.d", "ts", "client"), contentType: "application/typescript; charset=utf-8",
            cacheControl: Self.clientCacheControl)
    }

    func addRoutes(to router: Router<AppRequestContext>) {
        for (path, document) in [
            ("/", demoPage), ("openapi.yaml", openAPI),
            ("client/payment-status.js", clientModule), ("client/payment-status.d.ts", clientTypes),
        ] {
            router.get(RouterPath(path)) { request, _ in document.response(to: request) }
        }
    }
}
