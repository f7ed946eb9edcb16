import ArgumentParser
import Foundation
import SutureCore

/// `suture reconcile`: the timer and boot entry point.
struct ReconcileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Apply the manifests configured in /etc/suture/suture.yaml (timer and boot entry point).",
        discussion: """
            Reads /etc/suture/suture.yaml (manifest paths, lock timeout, defaults) and applies its manifests \
            plus /etc/suture/manifests.d/local.yaml. With --boot, only patches declared `accepted` are \
            restored and nothing else is touched (no prune). Under systemd it reports through sd_notify \
            (STATUS while working, READY=1 with the summary) and logs to journald with the fields \
            SUTURE_PATCH, SUTURE_ACTION, SUTURE_PID and SUTURE_RESULT.

            \(ApplyExitCode.helpText)
            """)

    @Option(help: "Filesystem root.")
    var root: String = "/"

    @Flag(help: "Boot mode: restore only accepted patches.")
    var boot = false

    @Option(name: .customLong("lock-timeout"), help: "Seconds to wait for the run lock (default: config).")
    var lockTimeout: Double?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let runtime: Context
        do { runtime = try Context.load(root: root) } catch {
            SystemdNotifier.notify("STATUS=configuration error: \(error)")
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        SystemdNotifier.status(boot ? "restoring accepted patches" : "reconciling")
        let paths = runtime.configuredManifestPaths
        let source: ApplySource
        if boot {
            var desired: DesiredState
            do { desired = try runtime.loadDesired(paths: paths).0 } catch {
                SystemdNotifier.notify("STATUS=manifest error")
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
            desired.patches = desired.patches.filter { $0.state == .accepted }
            desired.prune = false
            source = .desired(desired, uuids: nil)
        } else {
            source = .manifests(paths)
        }
        let options = RunOptions(lockTimeout: .seconds(lockTimeout ?? runtime.config.lockTimeoutSeconds),
                                 allowPartial: runtime.config.allowPartial, recordGeneration: true,
                                 command: boot ? "suture reconcile --boot" : "suture reconcile",
                                 manifestPaths: paths, status: { SystemdNotifier.status($0) })
        let (report, plan) = runtime.run(source, options: options)
        runtime.host.logger.notice("\(report.summary)", metadata: ["suture_result": "\(report.exitCode)",
                                                              "suture_action": "reconcile"])
        SystemdNotifier.ready(status: report.summary)
        let code = emit(report, plan: plan, json: json)
        if code != 0 { throw ExitCode(code) }
    }
}
