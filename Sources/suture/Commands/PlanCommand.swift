import ArgumentParser
import Foundation
import SutureCore

/// `suture plan`: reads the manifests, the patch store and the live state, and prints what `suture apply`
/// would do — changing nothing.
///
/// Exit status: 0 success (with `--detailed-exitcode`: success and no changes), 1 error (bad input, or a
/// plan with errors), 2 (`--detailed-exitcode` only) success with changes. Same convention as
/// `terraform plan -detailed-exitcode`.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the actions that bring the live state to the manifests (changes nothing).",
        discussion: """
        Symbols: + install (into the store), > activate, < deactivate, - remove (from the store).
        User patches are activated and deactivated per process (pid, start time, comm, target).
        Exit status: 0 no changes or success, 1 error, 2 changes (with --detailed-exitcode).
        """
    )

    @Argument(help: ArgumentHelp("Manifest files or directories (default: the configured manifests).", valueName: "PATHS"))
    var paths: [String] = []

    @OptionGroup var rootOptions: RootOptions

    @Flag(name: .long, help: "Print the plan as JSON (format_version 1).")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Also write the plan, with the live state it was made from, for `suture apply FILE`.", valueName: "FILE"))
    var out: String?

    @Flag(name: .customLong("detailed-exitcode"), help: "Exit 2 when the plan has changes, 0 when it has none.")
    var detailedExitcode = false

    func run() throws {
        let snapshot: Context.Snapshot
        do {
            snapshot = try Context.load(rootOptions).snapshot(arguments: paths)
        } catch {
            Terminal.printDiagnostics(error.diagnostics)
            throw ExitCode(1)
        }
        Terminal.printDiagnostics(snapshot.warnings)
        Terminal.printUnreadable(snapshot.live.unreadable)

        let plan = Planner.plan(desired: snapshot.desired, live: snapshot.live)
        if json {
            print(try PlanRenderer.json(plan), terminator: "")
        } else {
            print(PlanRenderer(color: Terminal.colorOnStdout).text(plan, live: snapshot.live), terminator: "")
        }
        if !plan.errors.isEmpty { throw ExitCode(1) }
        if let out {
            let saved = SavedPlan(plan: plan, desired: snapshot.desired, live: snapshot.live)
            do {
                try Terminal.writeAtomically(try saved.encoded(), to: out)
            } catch let error as DiagnosticError {
                Terminal.printDiagnostics(error.diagnostics)
                throw ExitCode(1)
            }
            if !json { print("Saved the plan to \(out); apply it with `suture apply \(out)`.") }
        }
        if detailedExitcode && !plan.actions.isEmpty { throw ExitCode(2) }
    }
}
