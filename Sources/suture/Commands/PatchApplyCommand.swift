import ArgumentParser
import Foundation
import SutureCore

/// `suture patch apply ID…`: install into the store and activate (SysCare `apply`).
struct PatchApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Install a patch into the store and activate it (every matching process, or the kernel).",
        discussion: """
            ID is a uuid, TARGET/NAME, a unique NAME (store or configured manifests) or a bundle directory. \
            Runs through the executor: locked, journaled, rolled back on failure. Not persistent: only \
            `suture patch accept` survives a reboot and the next reconcile.

            \(ApplyExitCode.helpText)
            """)

    @OptionGroup var common: PatchVerbOptions
    @Argument(help: "Patch identifiers or bundle directories.")
    var identifiers: [String]

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        for bundle in context.resolveAllOrNothing(identifiers, verb: "apply") {
            let code = context.run(bundle, state: .activated, verb: "apply")
            if code != 0 { throw ExitCode(code) }
            try context.printStatusLine(bundle)
        }
    }
}
