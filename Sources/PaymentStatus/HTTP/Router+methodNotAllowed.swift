import Hummingbird

extension Router {
    /// Answers 405 with an `Allow` header for a known path asked with a
    /// method it does not serve (the router alone would answer 404).
    /// `routes` maps each path, as registered, to the methods it serves.
    func addMethodNotAllowed(for routes: [(path: String, methods: [HTTPRequest.Method])]) {
        let candidates: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options, .trace]
        for (path, methods) in routes {
            let allow = methods.map(\.rawValue).joined(separator: ", ")
            for method in candidates where !methods.contains(method) {
                on(RouterPath(path), method: method) { request, _ -> Response in
                    var error = APIError(.methodNotAllowed, detail: "\(request.method) is not served at this path; use \(allow)")
                    error.headers[.allow] = allow
                    throw error
                }
            }
        }
    }
}
