// swift-tools-version: 6.1
// Benchmarks: a separate package so the main build and test run stay light.
// Run: `swift run -c release --package-path Benchmarks <Benchmark>` (see README "Benchmarks").
import PackageDescription

let package = Package(
    name: "SutureBenchmarks",
    dependencies: [
        .package(name: "Suture", path: ".."),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // `suture plan` against 1,000 live processes and 50 declared patches (reconciler-core issue).
        .executableTarget(name: "PlanBenchmark", dependencies: [
            .product(name: "SutureCore", package: "Suture"),
            .product(name: "SuturePatching", package: "Suture"),
        ]),
        // Manifest loading: N PatchSet files parsed, checked, selected and merged (manifest issue).
        .executableTarget(name: "ManifestBenchmark", dependencies: [
            .product(name: "SutureCore", package: "Suture"),
            .product(name: "Yams", package: "Yams"),
        ]),
        // ptrace pause (first thread stopped → last thread resumed) by thread count (ptrace-engine issue).
        .executableTarget(name: "PauseBenchmark", dependencies: [
            .product(name: "SutureCore", package: "Suture"),
            .product(name: "SuturePatching", package: "Suture"),
        ]),
        // `suture build` (pipeline in-process) vs one plain build of the same tree: first and second patch.
        .executableTarget(name: "BuildBenchmark", dependencies: [.product(name: "SutureBuild", package: "Suture")]),
    ]
)
