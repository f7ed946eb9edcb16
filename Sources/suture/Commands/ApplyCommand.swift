import ArgumentParser
import Foundation
import SutureCore

/// `suture apply [PATHS… | PLANFILE]`: brings the host to the declared state.
struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply manifests (or a saved plan) to this host: lock, journal, roll back on failure.",
        discussion: """
            With manifest paths (files or directories), plans against the live state and executes the plan; \
            with no paths, uses the manifests configured in /etc/suture/suture.yaml (plus \
            /etc/suture/manifests.d/local.yaml). With one JSON file written by `suture plan --out FILE`, \
            applies exactly that plan and refuses it when the live state changed since, saying what changed.

            Every action is journaled in /var/lib/suture/journal before and after it runs; a run that finds \
            the journal of an interrupted run reports it and converges from the live state. The live state of \
            each object is re-read right before its action, so actions already done are skipped. If an \
            action fails, the actions done in this run are undone in reverse order. User patches are \
            all-or-nothing per patch unless --allow-partial (or the manifest's allowPartial) is given. \
            Each successful apply that changed something records a generation (`suture history`).

            \(ApplyExitCode.helpText)
            """)

    @Argument(help: "Manifest files or directories, or one saved plan (JSON from `suture plan --out`).")
    var paths: [String] = []

    @Option(help: "Filesystem root for every path Suture reads or writes (tests, chroots).")
    var root: String = "/"

    @Option(name: .customLong("lock-timeout"), help: "Seconds to wait for the run lock held by another suture.")
    var lockTimeout: Double?

    @Flag(name: .customLong("allow-partial"),
          help: "Accept user patches that became live in only some matching processes (reported as Partial).")
    var allowPartial = false

    @Flag(name: .customLong("force-transition"),
          help: "At a kernel transition's hard deadline write `force` (one-way: the host must be rebooted to be trusted; recorded in /var/lib/suture/reboot-required).")
    var forceTransition = false

    @Flag(help: "Print the result as JSON (format_version 1).")
    var json = false

    func run() throws {
        let runtime: Context
        do { runtime = try Context.load(root: root, forceTransition: forceTransition) } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        let source: ApplySource
        var manifestPaths = paths
        if paths.count == 1, let saved = try ApplyCommand.savedPlan(at: paths[0]) {
            source = .saved(saved, file: paths[0])
            manifestPaths = []
        } else {
            if manifestPaths.isEmpty { manifestPaths = runtime.configuredManifestPaths }
            source = .manifests(manifestPaths)
        }
        let options = RunOptions(lockTimeout: .seconds(lockTimeout ?? runtime.config.lockTimeoutSeconds),
                                 allowPartial: allowPartial, recordGeneration: true,
                                 command: (["suture"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
                                 manifestPaths: manifestPaths)
        let (report, plan) = runtime.run(source, options: options)
        let code = emit(report, plan: plan, json: json)
        if code != 0 { throw ExitCode(code) }
    }

    /// The saved plan at `path` when it is a regular file holding JSON (`{` first); nil for manifests.
    /// - Throws: `ExitCode(1)` after printing the error when it looks like a plan but does not decode.
    static func savedPlan(at path: String) throws -> SavedPlan? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
              let data = FileManager.default.contents(atPath: path),
              data.first(where: { !($0 == 0x20 || $0 == 0x0a || $0 == 0x09 || $0 == 0x0d) }) == UInt8(ascii: "{")
        else { return nil }
        do { return try SavedPlan.decode(data, file: path) } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
