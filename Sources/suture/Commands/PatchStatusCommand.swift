import ArgumentParser
import Foundation
import SutureCore

/// `suture patch status ID…`: `<name>: <STATUS>` per patch, read live.
struct PatchStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print `TARGET/NAME: STATUS` for each patch (read live, never cached).",
        discussion: "Without identifiers: every patch in the store.")

    @OptionGroup var common: PatchVerbOptions
    @Argument(help: "Patch identifiers (default: every patch in the store).")
    var identifiers: [String] = []

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        let (found, failed) = context.resolveEach(identifiers)
        let bundles = identifiers.isEmpty
            ? context.store.list().map(\.bundle).sorted { $0.metadata.qualifiedName < $1.metadata.qualifiedName }
            : found.map(\.bundle)
        let report = try context.statusReport()
        for b in bundles {
            let entry = report.patches.first { $0.uuid == b.metadata.uuid }
            print("\(b.metadata.qualifiedName): \(entry?.statusText ?? PatchStatus.notApplied.rawValue)")
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
