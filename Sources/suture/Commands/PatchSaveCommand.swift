import ArgumentParser
import Foundation
import SutureCore

/// `suture patch save`: snapshot the status of every patch in the store (SysCare `save`).
struct PatchSaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save",
        abstract: "Save the current status of every installed patch to /var/lib/suture/saved-status.json (for `restore`).")

    @OptionGroup var common: PatchVerbOptions

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        let report = try context.statusReport()
        let entries = context.store.list().map { installed in
            SavedStatus.Entry(uuid: installed.uuid, name: installed.bundle.metadata.name,
                              status: report.patches.first { $0.uuid == installed.uuid }?.status ?? .deactivated)
        }
        do { try SavedStatus(patches: entries).save(paths: context.paths) } catch { fail("error: \(error)") }
        for e in entries { print("\(e.name): \(e.status.rawValue)") }
    }
}
