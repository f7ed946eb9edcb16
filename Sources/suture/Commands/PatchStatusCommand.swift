import ArgumentParser
import Foundation
import SutureCore

/// `suture patch status ID…`: `<name>: <STATUS>` per patch, read live.
struct PatchStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print `TARGET/NAME: STATUS` for each patch (read live, never cached).")

    @OptionGroup var common: PatchVerbOptions
    @Argument(help: "Patch identifiers.")
    var identifiers: [String]

    func run() throws {
        let context = try PatchVerbContext(root: common.root)
        let bundles = try identifiers.map { try context.resolve($0) }
        let report = try context.statusReport()
        for b in bundles {
            let entry = report.patches.first { $0.uuid == b.metadata.uuid }
            print("\(b.metadata.qualifiedName): \(entry?.statusText ?? PatchStatus.notApplied.rawValue)")
        }
    }
}
