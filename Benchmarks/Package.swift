// swift-tools-version:6.1
// Micro-benchmarks of the hot paths, in a package of their own so that the
// service's build and CI never compile the benchmark harness.
// Run from the repository root: swift package --package-path Benchmarks benchmark
import PackageDescription

let package = Package(
    name: "payment-status-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "payment-status", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "PaymentStatus", package: "payment-status"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
