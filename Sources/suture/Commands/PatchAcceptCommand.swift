import ArgumentParser
import Foundation
import SutureCore

/// `suture patch accept ID…`: activate and make persistent by declaring it in the local manifest.
struct PatchAcceptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accept",
        abstract: "Make a patch persistent: activate it and declare it accepted in /etc/suture/manifests.d/local.yaml.",
        discussion: """
            The declaration points at the patch's store copy, pinned by its digest, so `suture reconcile --boot` \
            restores it after a reboot, the timer keeps it, and `suture plan` shows no change for it: the \
            imperative verbs and the manifests never disagree. Refused when another manifest already declares \
            the patch with a different state (change it there).

            \(ApplyExitCode.helpText)
            """)

    @OptionGroup var common: PatchVerbOptions
    @Argument(help: "Patch identifiers or bundle directories.")
    var identifiers: [String]

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        let paths = context.paths
        for bundle in context.resolveAllOrNothing(identifiers, verb: "accept") {
            let m = bundle.metadata
            if let existing = context.declaration(of: m.uuid), existing.location.file != paths.localManifest,
               existing.state != .accepted {
                fail("error: \(m.name) is declared \(existing.state.rawValue) at \(existing.location); "
                     + "declare it `state: accepted` there instead")
            }
            let code = context.run(bundle, state: .accepted, verb: "accept")
            if code != 0 { throw ExitCode(code) }
            guard let stored = context.store.entry(uuid: m.uuid) else {
                fail("error: \(m.name) is not in the store after activation")
            }
            if context.declaration(of: m.uuid)?.location.file != paths.localManifest
                && context.declaration(of: m.uuid) != nil {
                // Declared accepted in another manifest already: nothing to write.
                try context.printStatusLine(bundle)
                continue
            }
            var local: LocalManifest
            do { local = try LocalManifest.load(paths: paths) } catch { fail("\(error)") }
            local.upsert(.init(name: m.name, bundle: stored.bundle.path, sha256: stored.bundle.digest, state: .accepted,
                               target: context.declaration(of: m.uuid)?.target ?? Context.selector(for: m)))
            do { try local.save() } catch { fail("error: \(error)") }
            // Status from the manifests as they are now (the local manifest declares it accepted).
            try Context.forPatchVerbs(root: common.root).printStatusLine(bundle)
        }
    }
}
