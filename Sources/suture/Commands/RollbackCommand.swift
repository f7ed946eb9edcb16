import ArgumentParser
import Foundation
import SutureCore

/// `suture rollback [N]`: plans and applies back to generation N.
struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Bring the host back to generation N (default: the one before the latest).",
        discussion: """
            Plans from generation N's recorded desired state (bundles from the store, or their recorded \
            paths when the digest still matches; patches installed since set absent) against the live state, \
            and applies it like `suture apply`, recording a new generation. Refuses, naming the reason, what \
            cannot be undone: a kernel patch whose transition was forced (reboot required), or a bundle that \
            is no longer available. The manifests are not changed: the next `suture apply`/reconcile applies \
            them again, so revert the manifest change too to keep the rollback.

            \(ApplyExitCode.helpText)
            """)

    @Argument(help: "Generation number (see `suture history`).")
    var generation: Int?

    @Option(help: "Filesystem root.")
    var root: String = "/"

    @Option(name: .customLong("lock-timeout"), help: "Seconds to wait for the run lock.")
    var lockTimeout: Double?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let runtime: Context
        do { runtime = try Context.load(root: root) } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        let store = GenerationStore(paths: runtime.paths)
        let numbers = store.numbers()
        guard let number = generation ?? (numbers.count >= 2 ? numbers[numbers.count - 2] : nil) else {
            FileHandle.standardError.write(Data("error: no earlier generation to roll back to (generations: \(numbers.map(String.init).joined(separator: ", ")))\n".utf8))
            throw ExitCode(1)
        }
        let desired: DesiredState
        do {
            let target = try store.load(number)
            desired = try RollbackPlanning.desiredState(for: target, store: runtime.store.list()) { path in
                try? BundleReader.read(directory: URL(fileURLWithPath: path)).digest
            }
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let forced = runtime.forcedModules
        let installed = runtime.store.list()
        let options = RunOptions(
            lockTimeout: .seconds(lockTimeout ?? runtime.config.lockTimeoutSeconds), allowPartial: false,
            recordGeneration: true, command: "suture rollback \(number)", manifestPaths: [],
            refuse: { plan in
                var reasons = RollbackPlanning.refusals(plan)
                for action in plan.actions where action.patchKind == .kernel {
                    let modules = action.module.map { [$0] } ?? installed.first { $0.uuid == action.uuid }?
                        .bundle.metadata.entities.compactMap(\.moduleName) ?? []
                    for m in modules where forced.contains(m) {
                        reasons.append("\(describe(action)): livepatch \(m) was force-transitioned; it cannot be "
                                       + "undone safely (reboot required, see /var/lib/suture/reboot-required)")
                    }
                }
                return reasons
            })
        let (report, plan) = runtime.run(.desired(desired, uuids: nil), options: options)
        let code = emit(report, plan: plan, json: json)
        if code != 0 { throw ExitCode(code) }
    }
}
