import Foundation
import Hummingbird

/// `GET /` (the demo checkout page) and `GET /openapi.yaml` (the contract),
/// both shipped as resources of this module and read once at start.
struct DocumentsController {
    let demoPage: ByteBuffer
    let openAPI: ByteBuffer

    /// Reads the resources; fails at start-up, not at the first request, when they are missing.
    init() throws {
        func load(_ name: String, _ ext: String, _ folder: String? = nil) throws -> ByteBuffer {
            guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: folder),
                let data = FileManager.default.contents(atPath: url.path)
            else {
                throw ConfigurationError(setting: "resources", message: "\(folder.map { $0 + "/" } ?? "")\(name).\(ext) is missing from the resource bundle")
            }
            return ByteBuffer(bytes: data)
        }
        demoPage = try load("index", "html", "demo")
        openAPI = try load("openapi", "yaml")
    }

    func addRoutes(to router: Router<AppRequestContext>) {
        let page = demoPage
        let spec = openAPI
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: page))
        }
        router.get("openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: spec))
        }
    }
}
