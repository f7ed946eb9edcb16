import ArgumentParser
import Foundation
import SutureCore

/// `suture patch target ID…`: the target package, in SysCare's layout.
struct PatchTargetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "target", abstract: "Show the package (or kernel) a patch targets (SysCare layout).")

    @OptionGroup var common: PatchVerbOptions
    @Argument(help: "Patch identifiers.")
    var identifiers: [String]

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        let (found, failed) = context.resolveEach(identifiers)
        for (_, bundle) in found {
            let m = bundle.metadata
            print("name:    \(m.target.package)")
            print("type:    \(m.kind == .kernel ? "KernelPackage" : "BinaryPackage")")
            print("arch:    \(m.target.arch)")
            print("version: \(m.target.version)")
            for e in m.entities { print("file:    \(e.moduleName ?? e.targetPath)") }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
