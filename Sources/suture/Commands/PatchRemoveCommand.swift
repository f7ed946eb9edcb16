import ArgumentParser
import Foundation
import SutureCore

/// `suture patch remove ID…`: deactivate everywhere and delete from the store (SysCare `remove`).
struct PatchRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Deactivate a patch everywhere and delete it from the store (NOT-APPLIED).",
        discussion: """
            An accepted patch is also dropped from /etc/suture/manifests.d/local.yaml (SysCare's DECLINE), so \
            the boot and timer reconciles do not bring it back.

            \(ApplyExitCode.helpText)
            """)

    @OptionGroup var common: PatchVerbOptions
    @Argument(help: "Patch identifiers.")
    var identifiers: [String]

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        for bundle in context.resolveAllOrNothing(identifiers, verb: "remove") {
            let code = context.run(bundle, state: .absent, verb: "remove")
            if code != 0 { throw ExitCode(code) }
            try LocalManifestEditing.decline(bundle, paths: context.paths)
            print("\(bundle.metadata.qualifiedName): \(PatchStatus.notApplied.rawValue)")
        }
    }
}

/// Keeps `/etc/suture/manifests.d/local.yaml` in step with the imperative verbs.
enum LocalManifestEditing {
    /// Drops `bundle` from the local manifest (no-op when absent).
    static func decline(_ bundle: ResolvedBundle, paths: StatePaths) throws {
        var local: LocalManifest
        do { local = try LocalManifest.load(paths: paths) } catch { fail("\(error)") }
        if local.remove(name: bundle.metadata.name) {
            do { try local.save() } catch { fail("error: \(error)") }
        }
    }
}
