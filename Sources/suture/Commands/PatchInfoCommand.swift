import ArgumentParser
import Foundation
import SutureCore

/// `suture patch info ID…`: the patch metadata, in SysCare's layout.
struct PatchInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Show patch metadata (SysCare layout): name, version, target, entities.")

    @OptionGroup var common: PatchVerbOptions
    @Argument(help: "Patch identifiers: uuid, TARGET/NAME, or a unique NAME.")
    var identifiers: [String]

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        let rule = String(repeating: "-", count: 60)
        let (found, failed) = context.resolveEach(identifiers)
        for (id, bundle) in found {
            let m = bundle.metadata
            print(rule)
            print("Patch: \(id)")
            print(rule)
            print("uuid:        \(m.uuid)")
            print("name:        \(m.name)")
            print("version:     \(m.version)")
            print("release:     \(m.release)")
            print("arch:        \(m.target.arch)")
            print("type:        \(m.kind == .user ? "UserPatch" : "KernelPatch")")
            print("target:      \(m.target.displayName)")
            print("description: \(m.description)")
            print("entities:")
            for e in m.entities {
                print("* \(e.payload) → \(e.moduleName ?? e.targetPath)"
                      + (e.targetBuildID.isEmpty ? "" : " (build-id \(e.targetBuildID))"))
            }
            print("patches:")
            for p in m.patches { print("* \(p.file)") }
            print(rule)
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
