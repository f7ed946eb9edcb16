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
        let context = try PatchVerbContext(root: common.root)
        for id in identifiers {
            let m = try context.resolve(id).metadata
            print("name:    \(m.target.package)")
            print("type:    \(m.kind == .kernel ? "KernelPackage" : "BinaryPackage")")
            print("arch:    \(m.target.arch)")
            print("version: \(m.target.version)")
            for e in m.entities { print("file:    \(e.moduleName ?? e.targetPath)") }
        }
    }
}
