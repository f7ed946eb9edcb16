import ArgumentParser

/// `suture patch …`: SysCare-compatible imperative verbs. Identifiers as SysCare takes them: a uuid,
/// `TARGET/NAME`, or a unique bare `NAME`.
struct PatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patch",
        abstract: "SysCare-compatible imperative verbs (list, info, target, status, check, apply, remove, accept, save, restore).",
        subcommands: [PatchListCommand.self, PatchInfoCommand.self, PatchTargetCommand.self, PatchStatusCommand.self,
                      PatchCheckCommand.self, PatchApplyCommand.self, PatchRemoveCommand.self, PatchAcceptCommand.self,
                      PatchSaveCommand.self, PatchRestoreCommand.self]
    )
}
