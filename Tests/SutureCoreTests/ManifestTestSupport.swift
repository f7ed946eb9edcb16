import Foundation
import SutureCore
import SutureTestSupport

/// Shared helpers for the manifest tests.
enum ManifestFixtures {
    /// `Tests/Fixtures/bad-manifests`.
    static var badManifests: URL { TestSupport.fixtures.appendingPathComponent("bad-manifests") }
    /// `examples/manifests`.
    static var examples: URL { TestSupport.packageRoot.appendingPathComponent("examples/manifests") }

    /// The bundle reader the tests use: the production reader.
    static let readBundle: ManifestLoader.BundleReading = { url throws(DiagnosticError) in
        try BundleReader.read(directory: url)
    }

    /// A loader in lint mode (every PatchSet selected), as `suture validate` runs without a host.
    static func lintLoader(config: SutureConfig = SutureConfig(), limits: ManifestLimits = ManifestLimits())
        -> ManifestLoader {
        ManifestLoader(config: config, allHosts: true, limits: limits, readBundle: readBundle)
    }

    /// A loader for one host.
    static func hostLoader(_ hostname: String, labels: [String: String] = [:], config: SutureConfig = SutureConfig())
        -> ManifestLoader {
        var config = config
        config.labels = labels
        return ManifestLoader(config: config, hostname: hostname, readBundle: readBundle)
    }

    /// Writes `files` (relative path → contents) under a fresh temporary directory.
    static func tree(_ files: [String: String]) throws -> URL {
        let root = try TestSupport.temporaryDirectory("suture-manifest")
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(),
                                                    withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        return root
    }

    /// Copies the fixture user bundle (`Tests/Fixtures/bad-manifests/bundles/demo-fix`) to `directory/name`.
    static func copyDemoBundle(to directory: URL, as name: String = "demo-fix") throws -> URL {
        let source = badManifests.appendingPathComponent("bundles/demo-fix")
        let target = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(),
                                                withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source, to: target)
        return target
    }

    /// The first line of the first error, with `prefix` removed from its path.
    static func firstErrorLine(_ diagnostics: [Diagnostic], strippingPrefix prefix: String) -> String? {
        guard let error = diagnostics.first(where: { $0.severity == .error }) else { return nil }
        let line = String(error.description.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        return line.hasPrefix(prefix) ? String(line.dropFirst(prefix.count)) : line
    }
}
