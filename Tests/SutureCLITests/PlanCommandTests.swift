import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// End to end: real gcc-built targets, real processes, real /proc, the built `suture` binary.
@Suite("suture plan / status end to end")
struct PlanCommandTests {
    static var suture: String { TestSupport.packageRoot.appendingPathComponent(".build/debug/suture").path }

    /// A started target process, killed and reaped on `stop()`.
    final class Target {
        let process = Process()
        init(_ path: String) throws {
            process.executableURL = URL(fileURLWithPath: path)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        }
        var pid: Int32 { process.processIdentifier }
        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// Waits (up to 60 s) until `pid` has exec'd `path`.
    static func waitExec(_ pid: Int32, _ path: String) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"), exe.hasPrefix(path) { return }
            usleep(20_000)
        }
        throw CBuild.Failure(description: "pid \(pid) did not exec \(path)")
    }

    /// Plan text without its first line (`Live state: … N relevant processes …`) and without `foreign` drift
    /// entries (a headline `! X: foreign` and its indented detail line), which depend on other processes.
    static func withoutHostNoise(_ text: String) -> String {
        var out: [Substring] = []
        var skipDetail = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst() {
            if skipDetail && line.hasPrefix("      ") { skipDetail = false; continue }
            skipDetail = false
            if line.hasPrefix("  ! ") && line.hasSuffix(": foreign") { skipDetail = true; continue }
            out.append(line)
        }
        return out.joined(separator: "\n")
    }

    /// `/proc/PID/stat` field 22 (start time in clock ticks).
    static func startTime(_ pid: Int32) throws -> UInt64 {
        try #require(ProcStat.read(pid: pid)?.startTime)
    }

    static func buildID(_ path: String) throws -> String {
        let out = try CBuild.check("/usr/bin/readelf", ["-n", path]).stdout
        let line = try #require(out.split(separator: "\n").first { $0.contains("Build ID:") })
        return String(line.split(separator: " ").last!)
    }

    /// Builds a target at `dir/demo`, a payload object and a bundle for the target's build-id, and a
    /// manifest declaring it `state` with `target`.
    static func setUp(_ dir: URL, state: String = "activated", target: String? = nil, package: String = "demo") throws -> (binary: String, manifest: String, bundle: ResolvedBundle) {
        let source = """
            #include <unistd.h>
            /* A unique build-id per test: tests run in parallel and the scanner matches by build-id. */
            __attribute__((used)) const char suture_test_tag[] = "\(UUID().uuidString)";
            int __attribute__((noinline)) parse_request(int x) { return x * 3; }
            int main(void) { for (;;) pause(); }
            """
        try CBuild.gcc(source: source, named: "demo.c", in: dir, ["-O1", "-o", "demo", "demo.c"])
        try CBuild.gcc(source: "int parse_request_v2(int x) { return x * 4; }\n", named: "fix.c", in: dir,
                       ["-O1", "-c", "-o", "fix.o", "fix.c"])
        let binary = dir.appendingPathComponent("demo").path
        let entity = BundleEntity(targetPath: binary, targetBuildID: try buildID(binary), payload: "fix.o", payloadSHA256: "",
                                  functions: [FunctionPatch(symbol: "parse_request", offset: 0, size: 8, expectedBytes: "",
                                                            replacement: "parse_request_v2")])
        let metadata = BundleMetadata(name: "demo-fix", version: "1", release: "1", uuid: "5e3c0a1b-0000-4000-8000-00000000e2e0",
                                      kind: .user, description: "end-to-end test patch",
                                      target: BundleTarget(package: package, version: "1.0", arch: "x86_64"),
                                      entities: [entity], patches: [])
        let bundle = try BundleWriter.write(metadata, payloads: ["fix.o": dir.appendingPathComponent("fix.o")],
                                            to: dir.appendingPathComponent("bundles/demo-fix"))
        let manifest = """
            apiVersion: suture.dev/v1
            kind: PatchSet
            metadata: {name: e2e}
            spec:
              patches:
                - name: demo-fix
                  bundle: bundles/demo-fix
                  sha256: "\(bundle.digest)"
                  state: \(state)
                  target: \(target ?? "{path: \(binary)}")

            """
        let manifestPath = dir.appendingPathComponent("e2e.yaml").path
        try manifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)
        return (binary, manifestPath, bundle)
    }

    @Test func planShowsTheActivationForTheRunningProcessMatchedByBuildID() throws {
        let dir = try TestSupport.temporaryDirectory("plan-e2e")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (binary, manifest, bundle) = try Self.setUp(dir)

        // Process A runs the build the bundle targets. Then the file is replaced by another build (a
        // package upgrade) and process B runs that one: only A may be patched.
        let a = try Target(binary)
        defer { a.stop() }
        try Self.waitExec(a.pid, binary)
        let source2 = "#include <unistd.h>\nint parse_request(int x) { return x * 5; }\nint main(void) { for (;;) pause(); }\n"
        try CBuild.gcc(source: source2, named: "demo2.c", in: dir, ["-O1", "-o", "demo.new", "demo2.c"])
        #expect(rename(dir.appendingPathComponent("demo.new").path, binary) == 0)
        let b = try Target(binary)
        defer { b.stop() }
        try Self.waitExec(b.pid, binary)
        let startA = try Self.startTime(a.pid)

        let text = try CBuild.run(Self.suture, ["plan", manifest])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("  > activate    demo-fix in pid \(a.pid) (demo, start \(startA)): \(binary)\n"), "\(text.stdout)")
        #expect(!text.stdout.contains("in pid \(b.pid) "))
        #expect(text.stdout.contains("1 process maps \(binary) with another build-id"))
        #expect(text.stdout.contains("pid \(b.pid) (demo)"))
        #expect(text.stdout.contains("  + install     demo-fix [user, \(bundle.metadata.uuid)] into the store"))
        #expect(text.stdout.hasSuffix("Plan: 1 to install, 1 to activate, 0 to deactivate, 0 to remove.\n"))

        let detailed = try CBuild.run(Self.suture, ["plan", manifest, "--detailed-exitcode"])
        #expect(detailed.status == 2, "\(detailed.stderr)")
        // Other tests run in parallel and patch their own processes: compare without the host-wide parts
        // (the header's process count and foreign markers of other tests' processes).
        #expect(Self.withoutHostNoise(detailed.stdout) == Self.withoutHostNoise(text.stdout))

        let json = try CBuild.run(Self.suture, ["plan", manifest, "--json"])
        #expect(json.status == 0)
        let plan = try JSONDecoder().decode(Plan.self, from: Data(json.stdout.utf8))
        let activation = try #require(plan.actions.first { $0.kind == .activate })
        #expect(activation.pid == a.pid && activation.startTime == startA && activation.targetPath == binary)
        #expect(plan.actions.filter { $0.kind == .activate }.count == 1)
        #expect(plan.liveFingerprint.hasPrefix("sha256:"))

        let out = dir.appendingPathComponent("plan.json").path
        let saved = try CBuild.run(Self.suture, ["plan", manifest, "--out", out])
        #expect(saved.status == 0)
        let file = try SavedPlan.decode(Data(contentsOf: URL(fileURLWithPath: out)), file: out)
        #expect(file.plan.actions == plan.actions)
        #expect(file.live.processes.contains { $0.pid == a.pid })
        #expect(file.desired.patches.first?.bundle?.digest == bundle.digest)

        let status = try CBuild.run(Self.suture, ["status", manifest])
        #expect(status.status == 0, "\(status.stderr)")
        // Other processes on the host may carry markers too: find our row, whatever the column widths.
        let row = status.stdout.split(separator: "\n").first { $0.hasPrefix("demo-fix ") }
        #expect(row.map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
                == "demo-fix user NOT-APPLIED (Drifted) activated \(binary)", "\(status.stdout)")
        #expect(status.stdout.contains("pid \(a.pid) (demo, start \(startA)): not live in \(binary)"))
        let statusJSON = try CBuild.run(Self.suture, ["status", manifest, "--json"])
        let report = try JSONDecoder().decode(StatusReport.self, from: Data(statusJSON.stdout.utf8))
        #expect(report.formatVersion == 1)
        #expect(report.patches.first { $0.name == "demo-fix" }?.status == .notApplied)
    }

    @Test func noRunningTargetMeansNoChangesAndExitZero() throws {
        let dir = try TestSupport.temporaryDirectory("plan-e2e-idle")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, manifest, _) = try Self.setUp(dir, state: "absent")
        let r = try CBuild.run(Self.suture, ["plan", manifest, "--detailed-exitcode"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasSuffix("No changes. Live state matches the manifests.\n"))
    }

    @Test func planErrorsAndBadManifestsExitOne() throws {
        let dir = try TestSupport.temporaryDirectory("plan-e2e-errors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, manifest, _) = try Self.setUp(dir, target: "{package: suture-no-such-package, version: \"1.0\"}",
                                              package: "suture-no-such-package")
        let r = try CBuild.run(Self.suture, ["plan", manifest, "--detailed-exitcode", "--out", dir.appendingPathComponent("p.json").path])
        #expect(r.status == 1)
        #expect(r.stdout.contains("e2e.yaml:6:7: error: patch 'demo-fix' cannot be activated: target package suture-no-such-package is not installed"), "\(r.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("p.json").path))

        let bad = dir.appendingPathComponent("bad.yaml").path
        try "apiVersion: suture.dev/v1\nkind: PatchSet\nmetadata: {name: x}\nspec:\n  patchez: []\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let b = try CBuild.run(Self.suture, ["plan", bad])
        #expect(b.status == 1)
        #expect(b.stdout.isEmpty)
        #expect(b.stderr.contains("bad.yaml:5:3: error:"), "\(b.stderr)")
    }
}
