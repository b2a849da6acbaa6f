import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
@testable import PaymentStatus

/// The load balancer of `docker-compose.scale-out.yml`, run for real: its
/// nginx configuration, the file the compose file mounts, in front of two
/// instances on one PostgreSQL. Streams and writes go through nginx, which
/// spreads them over both instances; events must arrive while the stream is
/// open (nothing buffered), once each and in order.
@Suite("nginx in front of two instances", .serialized, .timeLimit(.minutes(2)))
struct LoadBalancerTests {
    static let repo = URL(fileURLWithPath: TestService.migrations).deletingLastPathComponent()
    static let composeFile = repo.appendingPathComponent("docker-compose.scale-out.yml").path
    static let configurationFile = "deploy/nginx-scale-out.conf"

    /// The compose file's nginx config, with its upstream pointed at `upstreams`.
    static func serverConfiguration(listen port: Int, upstreams: [Int]) throws -> String {
        let compose = try String(contentsOfFile: composeFile, encoding: .utf8)
        guard compose.contains("./\(configurationFile):/etc/nginx/conf.d/default.conf") else {
            throw TestFailure("\(composeFile) does not mount \(configurationFile) as nginx's config")
        }
        var text = try String(contentsOfFile: repo.appendingPathComponent(configurationFile).path, encoding: .utf8)
        let upstream = try #require(text.range(of: #"server payment-status:8080[^;]*;"#, options: .regularExpression))
        text.replaceSubrange(upstream, with: upstreams.map { "server 127.0.0.1:\($0);" }.joined(separator: " "))
        let listen = try #require(text.range(of: "listen 8080;"))
        text.replaceSubrange(listen, with: "listen 127.0.0.1:\(port);")
        return text
    }

    /// One request with a `Host` header, which nginx requires of HTTP/1.1.
    static func request(_ port: Int, _ path: String, method: HTTPRequest.Method = .get, token: String? = nil, json: String? = nil)
        async throws -> TestClient.Response
    {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            var headers: HTTPFields = [HTTPField.Name("Host")!: "127.0.0.1:\(port)"]
            if let token { headers[.authorization] = "Bearer \(token)" }
            return try await client.execute(.init(path, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }))
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                guard bind(fd, generic, length) == 0, getsockname(fd, generic, &length) == 0 else { throw TestFailure("no free port") }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func streamsAndWritesThroughTheExampleLoadBalancer() async throws {
        try await ScaleOutTests.withTwoInstances { a, aServices, b, _ in
            let folder = try BinaryTests.Folder()
            defer { folder.remove() }
            let port = try Self.freePort()
            let configuration = """
                daemon off;
                pid \(folder.path)/nginx.pid;
                error_log \(folder.path)/error.log warn;
                events { worker_connections 256; }
                http {
                    access_log off;
                    client_body_temp_path \(folder.path)/body;
                    proxy_temp_path \(folder.path)/proxy;
                    fastcgi_temp_path \(folder.path)/fastcgi;
                    uwsgi_temp_path \(folder.path)/uwsgi;
                    scgi_temp_path \(folder.path)/scgi;
                \(try Self.serverConfiguration(listen: port, upstreams: [a.port, b.port]))
                }
                """
            try configuration.write(toFile: folder.path + "/nginx.conf", atomically: true, encoding: .utf8)
            let nginx = Process()
            nginx.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
            nginx.arguments = ["-p", folder.path, "-c", folder.path + "/nginx.conf", "-e", folder.path + "/error.log"]
            try nginx.run()
            defer { nginx.terminate() }
            do {
                try await eventually(20, "nginx to listen") { (try? await Self.request(port, "/healthz").status) == .ok }
            } catch {
                let log = (try? String(contentsOfFile: folder.path + "/error.log", encoding: .utf8)) ?? "no error.log"
                throw TestFailure("nginx did not answer on \(port) (running: \(nginx.isRunning)): \(log)")
            }

            let orders = (0..<6).map { "lb-\($0)" }
            var streams: [String: [SSEConnection]] = [:]
            for order in orders {
                let created = try await Self.request(
                    port, "/v1/orders", method: .post, token: TestService.apiToken, json: #"{"id":"\#(order)","amount":5,"currency":"EUR"}"#)
                #expect(created.status == .created)
                // Two streams per order through nginx: they land on either instance.
                var orderStreams: [SSEConnection] = []
                for _ in 0..<2 {
                    let stream = try await SSEConnection.open(port: port, path: LiveStreamTests.path(order, aServices))
                    #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 1)
                    orderStreams.append(stream)
                }
                streams[order] = orderStreams
            }
            for order in orders {
                let moved = try await Self.request(
                    port, "/v1/orders/\(order)/transitions", method: .post, token: TestService.apiToken, json: #"{"status":"processing"}"#)
                #expect(moved.status == .ok)
                // Each event arrives while its stream is still open: nginx passes it on at once.
                for stream in streams[order]! { #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 2) }
                let final = try await Self.request(
                    port, "/v1/orders/\(order)/transitions", method: .post, token: TestService.apiToken, json: #"{"status":"succeeded"}"#)
                #expect(final.status == .ok)
            }
            try await ScaleOutTests.expectRest(streams, [3])
            // Both instances served requests: nginx spread them. A fresh connection to each:
            // the test client's own may have been idle past the service's idle timeout by now.
            for instance in [a, b] {
                let metrics = String(buffer: try await Self.request(instance.port, "/metrics").body ?? ByteBuffer())
                #expect(metrics.contains(#"route="/v1/orders/{order_id}/transitions""#), "an instance got no transition through nginx")
            }
        }
    }
}
