import Foundation
import SutureCore

/// `suture plan --live FILE|DIR`: plans against saved live-state snapshots instead of this host, with the
/// same manifest loader and planner as a live plan.
enum LivePlanning {
    /// The snapshot files at `path`: the file itself, or every `*.json` directly in the directory, sorted.
    /// - Throws: `DiagnosticError` when the path does not exist or a directory holds no snapshot.
    static func snapshotFiles(_ path: String) throws(DiagnosticError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DiagnosticError(Diagnostic(.error, "\(path): no such snapshot file or directory"))
        }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let files = names.filter { $0.hasSuffix(".json") }.sorted().map { (path as NSString).appendingPathComponent($0) }
        if files.isEmpty { throw DiagnosticError(Diagnostic(.error, "\(path): no *.json snapshots in this directory")) }
        return files
    }

    /// Plans every snapshot at `livePath` against the manifests at `manifestPaths`, each with the
    /// snapshot's hostname and labels for `spec.hosts` selection.
    ///
    /// - Parameters:
    ///   - now: reference time for snapshot ages (fixed in tests so output is reproducible).
    ///   - requirePins: as the host configuration's `requirePins`.
    /// - Returns: the host plans sorted by hostname then snapshot path, and the manifest warnings.
    /// - Throws: `DiagnosticError` for unreadable snapshots and manifest errors.
    static func plans(livePath: String, manifestPaths: [String], now: Date, requirePins: Bool)
        throws(DiagnosticError) -> (hosts: [HostPlan], warnings: [Diagnostic]) {
        if manifestPaths.isEmpty {
            throw DiagnosticError(Diagnostic(.error, "plan --live needs the manifest paths to plan (e.g. `suture plan --live hosts/ manifests/`)"))
        }
        var hosts: [HostPlan] = []
        var warnings: [Diagnostic] = []
        var seenWarnings = Set<String>()
        for file in try snapshotFiles(livePath) {
            let snapshot = try LiveSnapshot.read(from: file)
            let live = snapshot.live
            var config = SutureConfig()
            config.labels = live.labels
            config.requirePins = requirePins
            let loader = ManifestLoader(config: config, hostname: live.hostname, readBundle: { url throws(DiagnosticError) in
                try BundleReader.read(directory: url)
            })
            let (desired, manifestWarnings) = try loader.desiredState(paths: manifestPaths)
            for warning in manifestWarnings where warning.severity != .error && seenWarnings.insert(warning.description).inserted {
                warnings.append(warning)
            }
            let plan = Planner.plan(desired: desired, live: live)
            hosts.append(HostPlan(hostname: live.hostname, snapshotPath: file, takenAt: snapshot.takenAt,
                                  ageSeconds: snapshot.age(now: now), patchSets: desired.patchSets,
                                  plan: plan, live: live))
        }
        hosts.sort { ($0.hostname, $0.snapshotPath) < ($1.hostname, $1.snapshotPath) }
        return (hosts, warnings)
    }
}
