import Foundation
import Testing
@testable import SuturePatching
import SutureCore
import SutureTestSupport

/// The driver end to end: a real bundle (BundleWriter) whose payload is a relocatable object compiled by
/// gcc, linked by PatchImageLinker, calling libc (resolved at run time) and reading a target global
/// (resolved through the bundle's target symbols); plus the `suture patch activate/deactivate` CLI.
@Suite(.serialized) struct DriverTests {
    /// Writes a bundle replacing `compute` with `compute_v3` (3·x + base_value, via getpid() from libc).
    /// `readsGlobal: false` leaves out the target global (patch.yaml round trips of `target_symbols` are
    /// the bundle format's business; the CLI test reads the bundle back from disk).
    /// `callsLibc: false` leaves out the getpid() call (threads calling the function back to back would
    /// otherwise sit in that system call with a return address into the patch, which keeps a deactivation BUSY).
    func makeBundle(_ fx: EngineFixture, readsGlobal: Bool = true, callsLibc: Bool = true) throws -> (ResolvedBundle, BundleEntity) {
        let src = fx.dir.appendingPathComponent("fix.c")
        try """
        extern long base_value;
        extern int getpid(void);
        long compute_v3(long x) { return x * 3 + \(readsGlobal ? "base_value" : "0") + \(callsLibc ? "(getpid() > 0 ? 0 : 1000)" : "0"); }
        """.write(to: src, atomically: true, encoding: .utf8)
        let obj = fx.dir.appendingPathComponent("fix.o")
        try runTool("/usr/bin/gcc", ["-O1", "-fPIC", "-ffunction-sections", "-fdata-sections", "-c", "-o", obj.path, src.path])
        let compute = try fx.symbol("compute")
        let base = try fx.symbol("base_value")
        let entity = BundleEntity(
            targetPath: fx.target, targetBuildID: fx.buildID, payload: "fix.o", payloadSHA256: "",
            functions: [FunctionPatch(symbol: "compute", offset: compute.offset, size: compute.size,
                                      expectedBytes: PatchRegionHeader.hexString(Array(compute.bytes.prefix(16))),
                                      replacement: "compute_v3")],
            imports: callsLibc ? ["getpid"] : [], targetSymbols: readsGlobal ? [TargetSymbol(symbol: "base_value", offset: base.offset)] : [],
            targetLinkBase: 0)
        let metadata = BundleMetadata(name: "compute-fix", version: "1", release: "1",
                                      uuid: UUID().uuidString.lowercased(), kind: .user, description: "test",
                                      target: BundleTarget(package: "engine-target", version: "1.0", arch: "x86_64"),
                                      entities: [entity], patches: [])
        let bundle = try BundleWriter.write(metadata, payloads: ["fix.o": obj], to: fx.dir.appendingPathComponent("bundle"))
        var written = entity
        written.payloadSHA256 = bundle.metadata.entities[0].payloadSHA256
        return (bundle, written)
    }

    @Test func driverActivatesALinkedPayloadCallingLibcAndReadingATargetGlobal() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "2")
        defer { p.stop() }
        let (bundle, entity) = try makeBundle(fx)
        let driver = PtraceUserPatchDriver()
        #expect(try driver.activate(bundle: bundle, entity: entity, pid: p.pid, startTime: nil, options: UserPatchOptions()) == .activated)
        let c = p.settle(expectNew: true)
        #expect(c?.new ?? 0 > 0 && c?.old == 0 && c?.wrong == 0)
        #expect(try driver.activate(bundle: bundle, entity: entity, pid: p.pid, startTime: nil, options: UserPatchOptions()) == .alreadyActive)
        #expect(try driver.deactivate(uuid: bundle.metadata.uuid, pid: p.pid, startTime: nil, options: UserPatchOptions()) == .deactivated)
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        // A recycled pid (other start time) is refused.
        #expect(throws: UserPatchError.self) {
            try driver.activate(bundle: bundle, entity: entity, pid: p.pid, startTime: 1, options: UserPatchOptions())
        }
    }

    @Test func tamperedPayloadIsRefusedBeforeAttach() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "1")
        defer { p.stop() }
        let (bundle, entity) = try makeBundle(fx)
        let payload = URL(fileURLWithPath: bundle.path).appendingPathComponent("fix.o")
        var bytes = try Data(contentsOf: payload)
        bytes[bytes.count - 1] ^= 0xff
        try bytes.write(to: payload)
        let before = try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8)
        var caught: UserPatchError?
        do {
            _ = try PtraceUserPatchDriver().activate(bundle: bundle, entity: entity, pid: p.pid,
                                                     startTime: nil, options: UserPatchOptions())
        } catch { caught = error }
        #expect(caught?.message.contains("sha256") == true)
        #expect(try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8) == before)
        #expect(ProcFiles.status("/proc/\(p.pid)/status")?["TracerPid"] == "0")
    }

    @Test func cliActivatesAndDeactivatesEveryMatchingProcess() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p1 = try fx.start("busy", "1")
        defer { p1.stop() }
        let p2 = try fx.start("idle", "2")
        defer { p2.stop() }
        let (bundle, _) = try makeBundle(fx, readsGlobal: false)
        let suture = TestSupport.packageRoot.appendingPathComponent(".build/debug/suture").path
        let root = try TestSupport.temporaryDirectory("suture-cli-root")
        defer { try? FileManager.default.removeItem(at: root) }
        let out = try runTool(suture, ["patch", "activate", bundle.metadata.uuid, "--bundle", bundle.path, "--root", root.path])
        #expect(out.contains("pid \(p1.pid) (engine_target): activated"))
        #expect(out.contains("pid \(p2.pid) (engine_target): activated"))
        #expect(p1.settle(expectNew: true)?.new ?? 0 > 0)
        // Regression (issue 3 review): an ad-hoc --bundle is installed into the store first, so status and
        // list know the patch instead of calling it foreign.
        #expect(out.contains("installed"))
        let stored = PatchStore(root: root).list()
        #expect(stored.map(\.uuid) == [bundle.metadata.uuid])
        #expect(stored.first?.problems.isEmpty == true)
        let again = try runTool(suture, ["patch", "active", bundle.metadata.uuid, "--bundle", bundle.path, "--pid", "\(p1.pid)",
                                         "--root", root.path])
        #expect(again.contains("pid \(p1.pid) (engine_target): already active"))
        #expect(!again.contains("installed"))
        // The verbs take the run lock that apply and reconcile take: a held lock is reported with its holder.
        let held = try RunLock.acquire(paths: StatePaths(root: root.path), holder: LockHolder(pid: 4242, command: "suture test-holder", started: "now"))
        var refusal = ""
        do { _ = try runTool(suture, ["patch", "deactivate", bundle.metadata.uuid, "--root", root.path, "--lock-timeout", "0"]) } catch {
            refusal = "\(error)"
        }
        held.release()
        #expect(refusal.contains("test-holder"))
        #expect(UserPatchEngine.readback(pid: p1.pid).count == 1)
        // Deactivation by bare uuid: needs nothing but the processes.
        let off = try runTool(suture, ["patch", "deactivate", bundle.metadata.uuid, "--root", root.path])
        #expect(off.contains("pid \(p1.pid) (engine_target): deactivated"))
        #expect(off.contains("pid \(p2.pid) (engine_target): deactivated"))
        #expect(p1.settle(expectNew: false)?.old ?? 0 > 0)
        #expect(UserPatchEngine.readback(pid: p2.pid).isEmpty)
    }
    /// Regression (adversarial review): SIGTERM/SIGINT reaching `suture` while a target thread ran injected
    /// registers (or single-stepped) killed the target with SIGSEGV/SIGTRAP. The signal now waits for the end
    /// of the operation: for every injection step, the target survives and ends either patched or clean.
    @Test func sigtermDuringInjectionWaitsForTheOperationAndTheTargetSurvives() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let (bundle, _) = try makeBundle(fx, readsGlobal: false)
        let suture = TestSupport.packageRoot.appendingPathComponent(".build/debug/suture").path
        let root = try TestSupport.temporaryDirectory("suture-sigterm-root")
        defer { try? FileManager.default.removeItem(at: root) }
        for step in 1...4 {
            let p = try fx.start("busy", "2")
            defer { p.stop() }
            // Started through python with an empty signal mask: the test runner's threads block signals and
            // a spawned child would inherit that (SIGTERM would then never arrive).
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            proc.arguments = ["-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])",
                              suture, "patch", "activate", bundle.metadata.uuid, "--bundle", bundle.path, "--root", root.path,
                              "--pid", "\(p.pid)"]
            var env = ProcessInfo.processInfo.environment
            env["SUTURE_TEST_SIGTERM_AT_INJECTION"] = "\(step)"
            proc.environment = env
            proc.standardOutput = FileHandle.nullDevice
            proc.standardError = FileHandle.nullDevice
            try proc.run()
            proc.waitUntilExit()
            // suture itself ends by the SIGTERM it received, after the operation.
            #expect(proc.terminationReason == .uncaughtSignal && proc.terminationStatus == SIGTERM, "step \(step)")
            #expect(p.isAlive, "step \(step): the target died")
            let regions = UserPatchEngine.readback(pid: p.pid)
            #expect(regions.allSatisfy { $0.header?.state == .active }, "step \(step): \(regions)")
            let c = p.settle(expectNew: !regions.isEmpty)
            #expect(c?.wrong == 0 && (regions.isEmpty ? c?.old ?? 0 > 0 : c?.new ?? 0 > 0), "step \(step)")
            #expect(ProcFiles.status("/proc/\(p.pid)/status")?["TracerPid"] == "0")
        }
    }
}
