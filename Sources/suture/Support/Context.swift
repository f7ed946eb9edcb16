import ArgumentParser
import Foundation
import SutureCore
import SuturePatching
import SystemPackage

/// `--root DIR`, shared by every command that reads the host.
struct RootOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Filesystem root to read the host from (tests, recorded trees).", valueName: "DIR"))
    var root: String = "/"
}

/// What every command that reads or changes the host starts from: the ``SutureHost`` under `--root`
/// (configuration, store, live reader, probe, drivers) and the plan and apply sessions over it. The
/// SysCare-compatible `suture patch` verbs also carry the declared state of the configured manifests
/// (`declared`, see `PatchVerbSupport.swift`).
struct Context {
    /// The host.
    let host: SutureHost
    /// The desired state of the configured manifests (`forPatchVerbs` only; empty otherwise).
    var declared = DesiredState(patches: [])

    /// The filesystem root (`/` in production).
    var root: String { host.root }
    /// The host configuration.
    var config: SutureConfig { host.config }
    /// Warnings from reading the configuration.
    var configWarnings: [Diagnostic] { host.configWarnings }
    /// The state layout under the root.
    var paths: StatePaths { host.paths }
    /// The patch store under the root.
    var store: PatchStore { host.store }
    /// The read side: manifests, store, live state, plan.
    var planning: PlanSession { PlanSession(host: host) }
    /// The configured manifest paths plus the local manifest (see `SutureHost.configuredManifestPaths`).
    var configuredManifestPaths: [String] { host.configuredManifestPaths }
    /// Kernel livepatch modules whose transition was forced.
    var forcedModules: Set<String> { host.forcedModules }

    /// Bootstraps logging and builds the host under `root` (`SutureHost.system`).
    /// - Parameter forceTransition: `--force-transition` for the kernel driver.
    /// - Throws: `DiagnosticError` when `suture.yaml` or the labels file is malformed.
    static func load(root: String, forceTransition: Bool = false) throws(DiagnosticError) -> Context {
        SutureLogging.bootstrap()
        return Context(host: try SutureHost.system(root: root, forceTransition: forceTransition))
    }

    /// Convenience for commands: `load(root:)` from the `--root` option.
    static func load(_ options: RootOptions) throws(DiagnosticError) -> Context { try load(root: options.root) }

    /// The manifest paths: the ones given on the command line, or the configured ones under the root.
    func manifestPaths(_ arguments: [String]) -> [String] { planning.manifestPaths(arguments) }

    /// Loads the manifests at `paths` for this host; see `PlanSession.loadDesired(paths:)`.
    func loadDesired(paths: [String]) throws(DiagnosticError) -> (DesiredState, [Diagnostic]) {
        try planning.loadDesired(paths: paths)
    }

    /// Reads the live state relevant to `desired` (region header states included).
    func readLive(_ desired: DesiredState) throws(DiagnosticError) -> LiveState {
        try planning.readLive(for: desired)
    }

    /// Manifests, store and live state; see `PlanSession.snapshot(arguments:manifestsOptional:)`.
    func snapshot(arguments: [String], manifestsOptional: Bool = false) throws(DiagnosticError)
        -> PlanSession.Snapshot {
        try planning.snapshot(arguments: arguments, manifestsOptional: manifestsOptional)
    }

    /// Runs one apply; see `ApplySession.run(source:options:)`.
    func run(_ source: ApplySource, options: RunOptions) -> (ApplyReport, Plan?) {
        ApplySession(host: host).run(source: source, options: options)
    }
}

/// Terminal output helpers shared by commands.
enum Terminal {
    /// Colour on standard output: a TTY and `NO_COLOR` unset (https://no-color.org).
    static var colorOnStdout: Bool {
        isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
    }

    /// Writes `text` to standard error.
    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Prints diagnostics to standard error, one block each.
    static func printDiagnostics(_ diagnostics: [Diagnostic]) {
        for d in diagnostics { printError(d.description) }
    }

    /// Prints the unreadable facts of a live state to standard error (at most `limit`, then a count).
    static func printUnreadable(_ facts: [UnreadableFact], limit: Int = 10) {
        for fact in facts.prefix(limit) {
            printError("warning: cannot read \(fact.path) (\(fact.reason)): \(fact.effect)")
        }
        if facts.count > limit { printError("warning: \(facts.count - limit) more unreadable facts (see --json of `suture status`)") }
    }

    /// Writes `text` to `path` atomically (temporary file in the same directory, then rename).
    /// - Throws: `DiagnosticError` naming the path.
    static func writeAtomically(_ text: String, to path: String) throws(DiagnosticError) {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try Data(text.utf8).write(to: tmp)
            if rename(tmp.path, url.path) != 0 {
                let e = errno
                try? FileManager.default.removeItem(at: tmp)
                throw DiagnosticError(Diagnostic(.error, "cannot write \(path): \(Errno(rawValue: e).description)"))
            }
        } catch let error as DiagnosticError {
            throw error
        } catch {
            throw DiagnosticError(Diagnostic(.error, "cannot write \(path): \(error.localizedDescription)"))
        }
    }
}
