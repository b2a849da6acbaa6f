import Foundation
import Testing
@testable import PaymentStatus

/// The Dockerfile, the compose files and the script that builds and checks
/// the image with a real Docker engine (`scripts/image-test`).
@Suite("Dockerfile and image test script", .timeLimit(.minutes(2)))
struct DeploymentFilesTests {
    static let repo = URL(fileURLWithPath: TestService.migrations).deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: repo.appendingPathComponent(path), encoding: .utf8)
    }

    /// The run stage: everything after the second FROM.
    static func runStage() throws -> [String] {
        let lines = try read("Dockerfile").split(separator: "\n").map(String.init)
        let froms = lines.indices.filter { lines[$0].hasPrefix("FROM ") }
        #expect(froms.count == 2, "a build stage and a run stage")
        return Array(lines[froms.last!...])
    }

    /// `ENV` of the run stage as a dictionary, continuation lines joined.
    static func runEnvironment() throws -> [String: String] {
        let stage = try runStage().joined(separator: "\n").replacingOccurrences(of: "\\\n", with: " ")
        var environment: [String: String] = [:]
        for line in stage.split(separator: "\n") where line.hasPrefix("ENV ") {
            for word in line.dropFirst(4).split(whereSeparator: \.isWhitespace) {
                let pair = word.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { environment[String(pair[0])] = String(pair[1]) }
            }
        }
        return environment
    }

    @Test func theImageRunsAsANonRootUserWithItsDataOnAVolume() throws {
        let stage = try Self.runStage()
        #expect(stage.contains("USER 10001:10001"))
        #expect(stage.joined(separator: "\n").contains("useradd --system --uid 10001 --user-group"))
        #expect(stage.contains("WORKDIR /app"))
        #expect(stage.contains(#"VOLUME ["/data"]"#))
        #expect(stage.contains("EXPOSE 8080"))
        #expect(stage.contains { $0.hasPrefix("HEALTHCHECK ") && $0.contains(#"["/app/payment-status", "healthcheck"]"#) })
        #expect(stage.contains(#"CMD ["serve"]"#))
        #expect(!stage.joined().contains("--demo") && !stage.joined().contains("PAYMENT_DEMO"))
        #expect(stage.first?.contains("slim") == true)
    }

    @Test func theImageEnvironmentIsOneTheServiceReads() throws {
        let environment = try Self.runEnvironment()
        #expect(environment == [
            "HOST": "0.0.0.0", "PORT": "8080", "PAYMENT_DB": "/data/payments.sqlite", "PAYMENT_MIGRATIONS_DIR": "/app/migrations",
        ])
        let configuration = try AppConfiguration(environment: environment)
        #expect(configuration.host == "0.0.0.0" && configuration.port == 8080)
        #expect(configuration.database == .sqlite(path: "/data/payments.sqlite"))
        #expect(configuration.migrationsDirectory == "/app/migrations")
        #expect(!configuration.demo)
    }

    /// SwiftPM checks the folder of every target the manifest declares, the
    /// test target's too, even to build one product: the build stage copies
    /// them all, and .dockerignore lets them through.
    @Test func theBuildStageHasEveryTargetFolder() throws {
        let dockerfile = try Self.read("Dockerfile")
        let ignore = try Self.read(".dockerignore").split(separator: "\n").map(String.init)
        #expect(dockerfile.contains("swift build -c release --static-swift-stdlib --product payment-status"))
        for folder in ["Sources", "Tests"] {
            #expect(dockerfile.contains("COPY \(folder) ./\(folder)"))
            #expect(!ignore.contains("\(folder)/") && !ignore.contains(folder))
        }
        #expect(dockerfile.contains("COPY --from=build /staging/app /app"))
    }

    /// `scripts/image-test` builds this Dockerfile with a real engine and checks
    /// the image; the user it expects is the one the Dockerfile names.
    @Test func theImageTestBuildsTheRealDockerfile() throws {
        let script = try Self.read("scripts/image-test")
        #expect(script.contains("hadolint Dockerfile"))
        #expect(script.contains(#"$1=="USER""#))
        #expect(script.contains("docker-compose.scale-out.yml") && script.contains("docker-compose.yml"))
        #expect(!FileManager.default.fileExists(atPath: Self.repo.appendingPathComponent("scripts/image-smoke").path))
    }

    @Test func dockerignoreKeepsBuildOutputAndSecretsOut() throws {
        let ignore = try Self.read(".dockerignore").split(separator: "\n").map(String.init)
        for entry in [".build/", ".git/", "data/", "Package.resolved"] {
            #expect(ignore.contains(entry))
        }
    }
}
