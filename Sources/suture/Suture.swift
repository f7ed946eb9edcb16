import ArgumentParser

/// The `suture` command: a declarative live-patching manager.
@main
struct Suture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suture",
        abstract: "Declarative live patching for the Linux kernel and running processes.",
        version: "0.1.0",
        subcommands: [
            PlanCommand.self,
            StatusCommand.self,
            SnapshotCommand.self,
            KernelDriverCommand.self,
            BundleCommand.self,
            ApplyCommand.self,
            HistoryCommand.self,
            RollbackCommand.self,
            ReconcileCommand.self,
            PatchCommand.self,
            ValidateCommand.self,
        ]
    )
}
