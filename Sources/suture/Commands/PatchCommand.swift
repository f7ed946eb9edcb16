import ArgumentParser

/// `suture patch …`: SysCare-compatible imperative verbs. Identifiers as SysCare takes them: a uuid,
/// `TARGET/NAME`, or a unique bare `NAME`. Each verb lives in its own file; add new ones to `subcommandList`.
struct PatchCommand: ParsableCommand {
    /// The `patch` verbs.
    static let subcommandList: [any ParsableCommand.Type] = [
        PatchListCommand.self, PatchInfoCommand.self, PatchTargetCommand.self, PatchStatusCommand.self,
        PatchCheckCommand.self, PatchApplyCommand.self, PatchRemoveCommand.self,
        PatchActivateCommand.self, PatchDeactivateCommand.self,
        PatchAcceptCommand.self, PatchSaveCommand.self, PatchRestoreCommand.self,
    ]

    static let configuration = CommandConfiguration(
        commandName: "patch",
        abstract: "SysCare-compatible imperative verbs (list, info, target, status, check, apply, remove, activate, deactivate, accept, save, restore).",
        subcommands: subcommandList
    )
}
