import Hummingbird
import NIOCore

import Foundation

/// Why a request body could not be turned into a command.
enum BodyProblem: Error {
    /// Not JSON, or not the JSON object the endpoint takes.
    case malformed(String)
    /// Well-formed JSON whose fields break the contract's rules.
    case invalid(InputError)
}

extension Request {
    /// The raw body, refused with 413 past the contract's limit. A declared
    /// Content-Length over the limit is refused before anything is read.
    func rawBody() async throws -> ByteBuffer {
        if let declared = headers[.contentLength].flatMap(Int.init), declared > RequestBodyLimit.bytes {
            throw APIError.bodyTooLarge()
        }
        var request = self
        do {
            return try await request.collectBody(upTo: RequestBodyLimit.bytes)
        } catch is NIOTooManyBytesError {
            throw APIError.bodyTooLarge()
        } catch {
            // The client ended the body early or sent a broken chunk: its fault, not ours.
            throw APIError.malformed("the body could not be read to its end")
        }
    }
}

/// Decodes a request body, telling a malformed document (400) from a
/// well-formed one with a wrong field (422).
/// Strict JSON comes first (`StrictJSON`): a repeated key, a trailing comma
/// or a number with a fraction is refused before any field is read.
func decodeBody<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws(BodyProblem) -> T {
    do {
        try StrictJSON.validate(buffer.readableBytesView)
    } catch {
        switch error {
        case .malformed(let detail): throw .malformed("the body is not strict JSON: \(detail)")
        case .notAnInteger(let path): throw .invalid(InputError(field: path.isEmpty ? "body" : path, message: "must be an integer"))
        }
    }
    let data = Data(buffer.readableBytesView)
    let failure: DecodingError
    do {
        // One parse on the happy path; the document is examined again only when it fails.
        return try JSONDecoder().decode(T.self, from: data)
    } catch let error as DecodingError {
        failure = error
    } catch {
        throw .malformed("the body could not be read")
    }
    // JSONDecoder's errors do not reliably tell a broken document from a
    // field of the wrong type: a broken document or one that is not an object is 400.
    guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
        throw .malformed("the body must be a JSON object")
    }
    switch failure {
    case .keyNotFound(let key, let context):
        throw .invalid(InputError(field: fieldPath(context.codingPath + [key]), message: "is required"))
    case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
        throw .invalid(InputError(field: fieldPath(context.codingPath), message: "has the wrong type or an invalid value"))
    @unknown default:
        throw .malformed("the body could not be read")
    }
}

private func fieldPath(_ path: [any CodingKey]) -> String {
    path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
}

/// A merchant request body turned into a command, as the merchant API
/// answers problems: 400 for a malformed document, 422 for a bad field.
func merchantCommand<Body: Decodable, Command>(
    _ type: Body.Type, from buffer: ByteBuffer, _ make: (Body) throws(InputError) -> Command
) throws(APIError) -> Command {
    let body: Body
    do {
        body = try decodeBody(type, from: buffer)
    } catch {
        switch error {
        case .malformed(let detail): throw .malformed(detail)
        case .invalid(let field): throw .invalid(field)
        }
    }
    do {
        return try make(body)
    } catch {
        throw .invalid(error)
    }
}
