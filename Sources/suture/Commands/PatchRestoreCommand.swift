import ArgumentParser
import Foundation
import SutureCore

/// `suture patch restore [--accepted]`: bring patches back to the saved status (SysCare `restore`).
struct PatchRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Bring every saved patch back to its saved status (`suture patch save`).",
        discussion: "\(ApplyExitCode.helpText)")

    @OptionGroup var common: PatchVerbOptions
    @Flag(help: "Only patches that were ACCEPTED.")
    var accepted = false

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        let saved: SavedStatus
        do { saved = try SavedStatus.load(paths: context.paths) } catch { fail("error: \(error)") }
        for entry in saved.patches where !accepted || entry.status == .accepted {
            guard let bundle = context.store.entry(uuid: entry.uuid)?.bundle else {
                FileHandle.standardError.write(Data("warning: \(entry.name) (\(entry.uuid)) is no longer in the store; skipped\n".utf8))
                continue
            }
            let state: DesiredPatchState
            switch entry.status {
            case .accepted, .activated: state = .activated
            case .deactivated: state = .deactivated
            case .notApplied: state = .absent
            }
            let code = context.run(bundle, state: state, verb: "restore")
            if code != 0 { throw ExitCode(code) }
            try context.printStatusLine(bundle)
        }
    }
}
