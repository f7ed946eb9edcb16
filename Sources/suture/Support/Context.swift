import ArgumentParser
import Foundation
import SutureCore
import SuturePatching

/// `--root DIR`, shared by every command that reads the host.
struct RootOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Filesystem root to read the host from (tests, recorded trees).", valueName: "DIR"))
    var root: String = "/"
}

/// What a command needs to read the host: the root, the host configuration (`/etc/suture/suture.yaml` and
/// `/etc/suture/labels` under the root), and the loading of manifests, the patch store and the live state.
/// Shared by `plan`, `status` and `apply`.
struct Context {
    /// The filesystem root (`/` in production).
    let root: String
    /// The host configuration.
    let config: SutureConfig
    /// Warnings from reading the configuration.
    let configWarnings: [Diagnostic]

    /// Everything one planning run reads.
    struct Snapshot {
        /// The merged manifests for this host.
        var desired: DesiredState
        /// The live state (store included).
        var live: LiveState
        /// Warnings from the configuration and the manifests.
        var warnings: [Diagnostic]
    }

    /// Reads the configuration under `root`.
    /// - Throws: `DiagnosticError` when `suture.yaml` or the labels file is malformed.
    static func load(root: String) throws(DiagnosticError) -> Context {
        let root = root.isEmpty ? "/" : root
        let (config, warnings) = try SutureConfig.load(root: root)
        return Context(root: root, config: config, configWarnings: warnings)
    }

    /// Convenience for commands: `load(root:)` from the `--root` option.
    static func load(_ options: RootOptions) throws(DiagnosticError) -> Context { try load(root: options.root) }

    /// The manifest paths: the ones given on the command line (relative to the working directory), or
    /// the configured ones under the root.
    func manifestPaths(_ arguments: [String]) -> [String] {
        arguments.isEmpty ? config.manifestPaths(root: root) : arguments
    }

    /// The patch store under the root.
    var store: PatchStore { PatchStore(root: URL(fileURLWithPath: root)) }

    /// Loads the manifests at `paths` for this host (hostname from the root's `/proc/sys/kernel/hostname`,
    /// labels from the configuration).
    /// - Throws: `DiagnosticError` with every manifest error.
    func loadDesired(paths: [String], hostname: String?) throws(DiagnosticError) -> (DesiredState, [Diagnostic]) {
        let loader = ManifestLoader(config: config, hostname: hostname, readBundle: { url throws(DiagnosticError) in
            try BundleReader.read(directory: url)
        })
        let (desired, warnings) = try loader.desiredState(paths: paths)
        return (desired, warnings)
    }

    /// Reads the store and the live state relevant to `desired`.
    /// - Throws: `DiagnosticError` when the labels file is malformed.
    func readLive(for desired: DesiredState, store bundles: [InstalledBundle]) throws(DiagnosticError) -> LiveState {
        do {
            var live = try LiveStateReader(root: root).read(interest: LiveInterest(desired: desired, store: bundles), store: bundles)
            fillRegionHeaderStates(&live, root: root)
            return live
        } catch {
            throw DiagnosticError(Diagnostic(.error, error.description))
        }
    }

    /// The hostname the manifests are selected for: the root's `/proc/sys/kernel/hostname` when readable,
    /// else `gethostname(2)` (`nil`).
    func hostname() -> String? {
        let path = SutureConfig.join(root, "/proc/sys/kernel/hostname")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? nil : name
    }

    /// Manifests, store and live state, in that order (the live state depends on what the manifests and
    /// the store name).
    ///
    /// - Parameters:
    ///   - arguments: manifest paths from the command line (empty: the configured ones).
    ///   - manifestsOptional: when true and no path was given, missing configured manifest directories
    ///     give an empty desired state instead of an error (`status` on a host without manifests).
    /// - Throws: `DiagnosticError`.
    func snapshot(arguments: [String], manifestsOptional: Bool = false) throws(DiagnosticError) -> Snapshot {
        var paths = manifestPaths(arguments)
        if manifestsOptional && arguments.isEmpty {
            paths = paths.filter { FileManager.default.fileExists(atPath: $0) }
        }
        var desired = DesiredState(patches: [])
        var warnings = configWarnings
        if !paths.isEmpty || !manifestsOptional {
            let (loaded, manifestWarnings) = try loadDesired(paths: paths, hostname: hostname())
            desired = loaded
            warnings += manifestWarnings.filter { $0.severity != .error }
        }
        let bundles = store.list()
        let live = try readLive(for: desired, store: bundles)
        return Snapshot(desired: desired, live: live, warnings: warnings)
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
                throw DiagnosticError(Diagnostic(.error, "cannot write \(path): \(String(cString: strerror(e)))"))
            }
        } catch let error as DiagnosticError {
            throw error
        } catch {
            throw DiagnosticError(Diagnostic(.error, "cannot write \(path): \(error.localizedDescription)"))
        }
    }
}
