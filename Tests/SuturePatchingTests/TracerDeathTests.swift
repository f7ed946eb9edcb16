import Foundation
import Testing
@testable import SuturePatching
import SutureCore
import SutureTestSupport

extension DriverTests {
    /// Regression (issue 13): SIGKILL of `suture patch activate`/`deactivate` while the target's threads ran
    /// the function being replaced killed the target with SIGTRAP (threads left single-stepping, or running
    /// injected registers only the tracer would restore). `SUTURE_TEST_SIGKILL_AT=POINT:N` makes suture
    /// SIGKILL itself at the N-th visit of each engine step (registers of an injected call set, its
    /// syscall-entry and -exit stops, the restore of the borrowed thread, a run slice and its stop, the
    /// stopped window): each time the target must live on untraced with only right results, and the same
    /// command run again must converge. The random-offset version of this is `scripts/fault-sweep`.
    @Test func sigkillOfSutureAtEveryEngineStepLeavesTheTargetRunningAndTheRerunConverges() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let (bundle, _) = try makeBundle(fx, readsGlobal: false, callsLibc: false)
        let suture = TestSupport.packageRoot.appendingPathComponent(".build/debug/suture").path
        let root = try TestSupport.temporaryDirectory("suture-sigkill-root")
        defer { try? FileManager.default.removeItem(at: root) }
        var p = try fx.start("hot", "8")
        defer { p.stop() }
        func run(_ op: String, killAt: String? = nil) throws -> Process {
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: suture)
            proc.arguments = ["patch", op, bundle.metadata.uuid] + (op == "activate" ? ["--bundle", bundle.path] : [])
                + ["--root", root.path, "--pid", "\(p.pid)"]
            var env = ProcessInfo.processInfo.environment
            env["SUTURE_TEST_SIGKILL_AT"] = killAt
            proc.environment = env
            proc.standardOutput = FileHandle.nullDevice
            proc.standardError = FileHandle.nullDevice
            try proc.run()
            proc.waitUntilExit()
            return proc
        }
        // Waits (on the condition, up to 10 s) until no thread is traced or in a stopped state: released
        // threads may need a moment to be scheduled on a loaded host.
        func untraced() -> Bool {
            for _ in 0..<500 {
                let tids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(p.pid)/task")) ?? []
                if !tids.isEmpty && tids.allSatisfy({ tid in
                    guard let st = ProcFiles.status("/proc/\(p.pid)/task/\(tid)/status") else { return true }
                    return st["TracerPid"] == "0" && !(st["State"] ?? "").hasPrefix("t") && !(st["State"] ?? "").hasPrefix("T")
                }) { return true }
                usleep(20_000)
            }
            return false
        }
        let points = ["inject-regs", "inject-entry", "inject-exit", "restore", "restore-mask", "run-slice", "run-slice-stop", "window"]
        var killed: [String: Int] = [:]
        for op in ["activate", "deactivate"] {
            for point in points {
                for n in [1, 3] where n == 1 || point.hasPrefix("inject") || point.hasPrefix("run-slice") {
                    let label = "\(op) killed at \(point):\(n)"
                    if op == "deactivate" {
                        #expect(try run("activate").terminationStatus == 0, "\(label): activation before")
                    }
                    let proc = try run(op, killAt: "\(point):\(n)")
                    if proc.terminationReason == .uncaughtSignal && proc.terminationStatus == SIGKILL {
                        killed["\(op) \(point)", default: 0] += 1
                    } else {
                        #expect(proc.terminationStatus == 0, "\(label): ran to its end without being killed, but failed")
                    }
                    #expect(p.isAlive, "\(label): the target died")
                    if !p.isAlive {
                        p.stop()
                        p = try fx.start("hot", "8")
                        continue
                    }
                    #expect(untraced(), "\(label): a thread is still traced or stopped")
                    let regions = UserPatchEngine.readback(pid: p.pid)
                    let active = regions.contains { $0.header?.state == .active }
                    let c = p.settle(expectNew: active)
                    #expect(c?.wrong == 0 && (active ? c?.new ?? 0 > 0 : c?.old ?? 0 > 0), "\(label): results \(String(describing: c))")
                    // The same command again converges.
                    #expect(try run(op).terminationStatus == 0, "\(label): the rerun failed")
                    let after = UserPatchEngine.readback(pid: p.pid)
                    if op == "activate" {
                        #expect(after.count == 1 && after.first?.header?.state == .active, "\(label): \(after)")
                        #expect(p.settle(expectNew: true)?.old == 0, "\(label)")
                        #expect(try run("deactivate").terminationStatus == 0)
                    } else {
                        #expect(after.isEmpty, "\(label): \(after)")
                        #expect(p.settle(expectNew: false)?.new == 0, "\(label)")
                    }
                }
            }
        }
        // Every step that runs on each operation was reached (run slices need a thread caught inside the
        // function, which 8 threads calling it back to back make likely but not certain).
        for op in ["activate", "deactivate"] {
            for point in ["inject-regs", "inject-entry", "inject-exit", "restore", "restore-mask", "window"] {
                #expect(killed["\(op) \(point)", default: 0] > 0, "\(op) never reached \(point)")
            }
        }
        print("tracer death: \(killed.values.reduce(0, +)) kills at engine steps: \(killed.sorted { $0.key < $1.key })")
        #expect(p.stderrText().isEmpty)
    }
}
