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

    @Flag(name: .long, help: "Print the plan as JSON (format_version 1); same as --format json.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Output format: text, json or markdown (a pull-request comment).", valueName: "FORMAT"))
    var format: RenderFormat?

    @Option(name: .long, help: ArgumentHelp("Plan against live-state snapshots (`suture snapshot`) instead of this host: one file, or a directory of *.json snapshots (one section per host).", valueName: "FILE|DIR"))
    var live: String?

    @Option(name: .long, help: ArgumentHelp("Reference time for snapshot ages with --live (RFC 3339, e.g. 2026-11-29T20:00:00Z; default: now), for reproducible output.", valueName: "TIME"))
    var now: String?

    @Option(name: .long, help: ArgumentHelp("Also write the plan, with the live state it was made from, for `suture apply FILE`.", valueName: "FILE"))
    var out: String?

    @Flag(name: .customLong("detailed-exitcode"), help: "Exit 2 when the plan has changes, 0 when it has none.")
    var detailedExitcode = false

    /// The output format: `--format`, else `--json`, else text.
    var outputFormat: RenderFormat { format ?? (json ? .json : .text) }

    func validate() throws {
        if json && format != nil && format != .json { throw ValidationError("--json conflicts with --format \(format!.rawValue)") }
        if live != nil && out != nil { throw ValidationError("--out saves a plan for `suture apply` on this host; it cannot be used with --live") }
        if now != nil && live == nil { throw ValidationError("--now only applies to --live") }
    }

    func run() throws {
        if let live { return try runLive(live) }
        let snapshot: PlanSession.Snapshot
        do throws(DiagnosticError) {
            let context = try Context.load(rootOptions)
            if paths.isEmpty, let error = context.config.noManifestsError(root: context.root, command: "suture plan") {
                throw DiagnosticError(error)
            }
            snapshot = try context.snapshot(arguments: paths)
        } catch {
            Terminal.printDiagnostics(error.diagnostics)
            throw ExitCode(1)
        }
        Terminal.printDiagnostics(snapshot.warnings)
        Terminal.printUnreadable(snapshot.live.unreadable)

        let plan = Planner.plan(desired: snapshot.desired, live: snapshot.live)
        let color = Terminal.colorOnStdout && outputFormat == .text
        print(try PlanRenderer(color: color).render(plan, format: outputFormat, live: snapshot.live), terminator: "")
        if !plan.errors.isEmpty { throw ExitCode(1) }
        if let out {
            let saved = SavedPlan(plan: plan, desired: snapshot.desired, live: snapshot.live)
            do {
                try Terminal.writeAtomically(try saved.encoded(), to: out)
            } catch let error as DiagnosticError {
                Terminal.printDiagnostics(error.diagnostics)
                throw ExitCode(1)
            }
            if outputFormat == .text { print("Saved the plan to \(out); apply it with `suture apply \(out)`.") }
        }
        if detailedExitcode && !plan.actions.isEmpty { throw ExitCode(2) }
    }

    /// `--live`: plans every snapshot against the manifests given as arguments.
    private func runLive(_ livePath: String) throws {
        var reference = Date()
        if let now {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime]
            guard let date = formatter.date(from: now) else {
                Terminal.printError("error: --now \(now): not an RFC 3339 time (e.g. 2026-11-29T20:00:00Z)")
                throw ExitCode(1)
            }
            reference = date
        }
        let hosts: [HostPlan]
        do {
            let (planned, warnings) = try LivePlanning.plans(livePath: livePath, manifestPaths: paths, now: reference,
                                                             requirePins: false)
            Terminal.printDiagnostics(warnings)
            hosts = planned
        } catch {
            Terminal.printDiagnostics(error.diagnostics)
            throw ExitCode(1)
        }
        let color = Terminal.colorOnStdout && outputFormat == .text
        print(try HostPlanRenderer(color: color).render(hosts, format: outputFormat), terminator: "")
        if hosts.contains(where: { !$0.plan.errors.isEmpty }) { throw ExitCode(1) }
        if detailedExitcode && hosts.contains(where: { !$0.plan.actions.isEmpty }) { throw ExitCode(2) }
    }
}

extension RenderFormat: ExpressibleByArgument {}
