import ArgumentParser
import Foundation
import SutureCore

/// Options every `suture patch` verb takes.
struct PatchVerbOptions: ParsableArguments {
    @Option(help: "Filesystem root.")
    var root: String = "/"
}

/// What the SysCare-compatible verbs share: the configured manifests, the store, identifier resolution,
/// live status, and imperative runs through the apply session (plan restricted to one patch).
extension Context {
    /// The context of a `suture patch` verb: the host under `root` and the desired state of the configured
    /// manifests (empty when there are none). Prints the error and exits 1 when either cannot be read.
    static func forPatchVerbs(root: String) throws -> Context {
        var context: Context
        do { context = try Context.load(root: root) } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        let paths = context.configuredManifestPaths.filter { FileManager.default.fileExists(atPath: $0) }
        if !paths.isEmpty {
            do { context.declared = try context.loadDesired(paths: paths).0 } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        return context
    }

    /// Bundles known by identifier: the store first, then the manifests.
    var known: [ResolvedBundle] { store.list().map(\.bundle) + declared.patches.compactMap(\.bundle) }

    /// Resolves a SysCare identifier (uuid, `TARGET/NAME`, unique `NAME`) or a bundle directory path.
    /// Prints why and exits 1 when it does not resolve (`lookup(_:)` does not exit).
    func resolve(_ identifier: String) throws -> ResolvedBundle {
        switch lookup(identifier) {
        case let .success(bundle): return bundle
        case let .failure(failure): fail(failure.text)
        }
    }

    /// The live status of every known patch.
    func statusReport() throws -> StatusReport {
        do { return StatusReport.build(desired: declared, live: try readLive(declared)) } catch {
            fail("error: \(error)")
        }
    }

    /// The manifest declaration of `uuid`, when any.
    func declaration(of uuid: String) -> DesiredPatch? { declared.patches.first { $0.uuid == uuid } }

    /// Runs the executor on the declared state with `bundle` set to `state`, restricted to its actions.
    /// Prints a warning when a manifest declares it differently (the next reconcile restores that).
    func run(_ bundle: ResolvedBundle, state: DesiredPatchState, verb: String, json: Bool = false) -> Int32 {
        var desired = declared
        let uuid = bundle.metadata.uuid
        if let existing = declaration(of: uuid) {
            // `remove` drops the patch from local.yaml itself (SysCare DECLINE): no warning for that one.
            let declinedByThisVerb = verb == "remove" && existing.location.file == paths.localManifest
            if existing.state != state && !(existing.state == .accepted && state == .activated) && !declinedByThisVerb {
                FileHandle.standardError.write(Data(("warning: \(bundle.metadata.name) is declared \(existing.state.rawValue) at "
                    + "\(existing.location); the next `suture apply`/reconcile will bring it back to that\n").utf8))
            }
            desired.patches = desired.patches.map { p in
                guard p.uuid == uuid else { return p }
                var q = p
                q.state = state == .activated && p.state == .accepted ? .accepted : state
                return q
            }
        } else {
            desired.patches.append(DesiredPatch(name: bundle.metadata.name, state: state,
                                                target: Context.selector(for: bundle.metadata),
                                                bundle: bundle, allowPartial: config.allowPartial,
                                                onStall: config.onStall, patchSet: "suture patch \(verb)",
                                                location: SourceLocation(file: "suture patch \(verb)", line: 1, column: 1)))
        }
        let options = RunOptions(lockTimeout: .seconds(config.lockTimeoutSeconds), allowPartial: config.allowPartial,
                                 recordGeneration: false, command: "suture patch \(verb) \(uuid)", manifestPaths: [])
        let (report, plan) = self.run(.desired(desired, uuids: [uuid]), options: options)
        if json { return emit(report, plan: plan, json: true) }
        if report.exitCode != .converged { return emit(report, plan: plan, json: false) }
        return report.exitCode.rawValue
    }

    /// The target selector a bundle implies when no manifest declares it.
    static func selector(for m: BundleMetadata) -> PatchTargetSelector {
        switch m.kind {
        case .kernel: return .kernel(release: m.target.version)
        case .user: return .path(m.entities.first?.targetPath ?? "/")
        }
    }

    /// `<name>: <STATUS>` lines (SysCare's output of state-changing verbs) for `bundle`.
    func printStatusLine(_ bundle: ResolvedBundle) throws {
        let report = try statusReport()
        let entry = report.patches.first { $0.uuid == bundle.metadata.uuid }
        print("\(bundle.metadata.qualifiedName): \(entry?.statusText ?? PatchStatus.notApplied.rawValue)")
    }
}

/// Prints `message` to stderr and exits 1.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    Foundation.exit(1)
}
