// swift-tools-version: 6.1
import PackageDescription

/// `SUTURE_TEST_HOOKS`: the environment test hooks (`SUTURE_TEST_*`) are compiled into debug builds only,
/// which is what `swift test` builds; release builds (`-c release`, the kernel tier, packages) never read them.
let testHooks: [SwiftSetting] = [.define("SUTURE_TEST_HOOKS", .when(configuration: .debug))]

let package = Package(
    name: "Suture",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "suture", targets: ["suture"]),
        .library(name: "SutureCore", targets: ["SutureCore"]),
        .library(name: "SuturePatching", targets: ["SuturePatching"]),
        .library(name: "SutureBuild", targets: ["SutureBuild"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // System libraries and C shims.
        .systemLibrary(name: "CLibElf", pkgConfig: "libelf", providers: [.apt(["libelf-dev"])]),
        .systemLibrary(name: "CLibDW", pkgConfig: "libdw", providers: [.apt(["libdw-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(name: "CLinuxShim"),

        // ELF: build-ids, program headers, symbols, relocations, CFI unwinding.
        .target(
            name: "SutureELF",
            dependencies: ["CLibElf", "CLibDW", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "SystemPackage", package: "swift-system")]
        ),
        // Model, manifests, bundles, store, live-state readers, planner, executor, journal, lock.
        .target(
            name: "SutureCore",
            dependencies: [
                "SutureELF",
                "CLinuxShim",
                "CSystemd",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: testHooks
        ),
        // Drivers: kernel (finit_module, sysfs) and user (ptrace engine, patch loader, trampolines).
        .target(
            name: "SuturePatching",
            dependencies: ["SutureCore", "SutureELF", "CLinuxShim", "CLibDW",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "SystemPackage", package: "swift-system"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: testHooks
        ),
        // Patch creation (bundle create; later: from source with the object differ).
        .target(name: "SutureBuild", dependencies: ["SutureCore", "SutureELF", "SuturePatching",
                                               .product(name: "Crypto", package: "swift-crypto")]),
        // The CLI.
        .executableTarget(
            name: "suture",
            dependencies: [
                "SutureCore", "SuturePatching", "SutureBuild", "CSystemd", "CLinuxShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // Tests (Swift Testing only: `swift test --disable-xctest`).
        .target(name: "SutureTestSupport", dependencies: ["SutureCore"], path: "Tests/SutureTestSupport"),
        .testTarget(name: "SutureELFTests", dependencies: ["SutureELF", "SutureTestSupport"]),
        .testTarget(
            name: "SutureCoreTests",
            dependencies: ["SutureCore", "SutureTestSupport",
                           .product(name: "Yams", package: "Yams"),
                           .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(name: "SuturePatchingTests", dependencies: ["SuturePatching", "SutureBuild", "SutureTestSupport"]),
        .testTarget(name: "SutureCLITests", dependencies: ["SutureCore", "SuturePatching", "SutureTestSupport"]),
        .testTarget(name: "SutureBuildTests", dependencies: ["SutureBuild", "SutureCore", "SutureTestSupport"]),
    ]
)
