import ArgumentParser
import CLinuxShim
import Foundation

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
            BuildCommand.self,
            ApplyCommand.self,
            HistoryCommand.self,
            RollbackCommand.self,
            ReconcileCommand.self,
            PatchCommand.self,
            ValidateCommand.self,
        ]
    )

    /// Line-buffers stdout before running the command: under a pipe or a file (CI logs, systemd, `tee`)
    /// stdout would otherwise be block-buffered, and a run killed mid-apply would lose the lines it had
    /// already printed about what it changed.
    static func main() {
        cls_line_buffer_stdout()
        // SIGINT/SIGTERM (Ctrl-C, systemctl stop, timeouts) never interrupt an operation on a process
        // half-way: they are held until it ends, then terminate as usual.
        cls_defer_termination_signals()
        if let pointer = SysCareVerbs.pointer(for: Array(CommandLine.arguments.dropFirst())) {
            FileHandle.standardError.write(Data("error: \(pointer)\n".utf8))
            exit(withError: ExitCode.validationFailure)
        }
        main(nil)
    }
}
