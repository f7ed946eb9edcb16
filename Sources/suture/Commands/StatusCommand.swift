import ArgumentParser
import Foundation
import SutureCore

/// `suture status`: every patch known from the store, the live state and the manifests, with its
/// SysCare-compatible state (NOT-APPLIED, DEACTIVATED, ACTIVATED, ACCEPTED), its conditions (Partial,
/// Transitioning, Stalled, Foreign, Drifted) and per-process detail for user patches. Read fresh from the
/// live system; nothing is cached.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every known patch with its live state (read fresh, never cached)."
    )

    @Argument(help: ArgumentHelp("Manifest files or directories (default: the configured manifests, if present).", valueName: "PATHS"))
    var paths: [String] = []

    @OptionGroup var rootOptions: RootOptions

    @Flag(name: .long, help: "Print the report as JSON (format_version 1); same as --format json.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Output format: text, json or markdown.", valueName: "FORMAT"))
    var format: RenderFormat?

    func run() throws {
        let snapshot: PlanSession.Snapshot
        do {
            snapshot = try Context.load(rootOptions).snapshot(arguments: paths, manifestsOptional: true)
        } catch {
            Terminal.printDiagnostics(error.diagnostics)
            throw ExitCode(1)
        }
        Terminal.printDiagnostics(snapshot.warnings)
        Terminal.printUnreadable(snapshot.live.unreadable)
        let report = StatusReport.build(desired: snapshot.desired, live: snapshot.live)
        let outputFormat = format ?? (json ? .json : .text)
        let renderer = StatusRenderer(color: Terminal.colorOnStdout && outputFormat == .text)
        print(try renderer.render(report, format: outputFormat), terminator: "")
    }
}
