import Foundation
import Testing
import SutureCore
import SutureTestSupport
@testable import SutureBuild
@testable import SuturePatching

/// End to end: gcc-built targets started as real processes, a bundle entity made by
/// `UserBundleBuilder` from a hand-compiled payload, linked by `PatchImageLinker` with imports from
/// `ImportResolver`, and activated/deactivated in the running process by the ptrace engine; the
/// process's own output shows which code runs.
@Suite(.serialized) struct UserPayloadEndToEndTests {
    static let targetSource = """
    #include <stdio.h>
    #include <stdlib.h>
    int global_factor = 7;
    static int __attribute__((noinline, noclone)) compute(int x) { int r = x + 1; if (x > 100000) r -= x % 7; return r; }
    int main(void) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        char line[64];
        printf("ready\\n");
        while (fgets(line, sizeof line, stdin)) {
            if (line[0] == 'g') global_factor = atoi(line + 1);
            else printf("result %d\\n", compute(atoi(line)));
        }
        return 0;
    }
    """

    static let fixSource = """
    #include <stdio.h>
    #include <stdlib.h>
    extern int global_factor;
    int compute_fixed(int x) {
        char *note = malloc(32);
        snprintf(note, 32, "n=%d", x);
        printf("fix saw %s\\n", note);
        free(note);
        return x * global_factor;
    }
    """

    /// A running target whose stdin we write and whose stdout lines we read.
    final class Target {
        let process = Process()
        let input = Pipe()
        let output = Pipe()
        var buffer = Data()

        init(_ executable: URL) throws {
            process.executableURL = executable
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            let first = try readLine()
            guard first == "ready" else { throw CBuild.Failure(description: "target said \(first)") }
        }

        var pid: Int32 { process.processIdentifier }

        func send(_ line: String) throws { try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8)) }

        /// The next line of output (the pipe read blocks until the target writes or exits).
        func readLine() throws -> String {
            while true {
                if let nl = buffer.firstIndex(of: 0x0a) {
                    let line = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
                    buffer.removeSubrange(buffer.startIndex...nl)
                    return line
                }
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { throw CBuild.Failure(description: "target closed its output (exited?)") }
                buffer.append(chunk)
            }
        }

        /// Sends `x` and returns every output line up to and including the `result` line.
        func ask(_ x: Int) throws -> [String] {
            try send(String(x))
            var lines: [String] = []
            repeat { lines.append(try readLine()) } while !(lines.last!.hasPrefix("result"))
            return lines
        }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }

        var maps: String { (try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)) ?? "" }
    }

    struct Fixture {
        let dir: URL
        let target: URL
        let bundle: ResolvedBundle
        var entity: BundleEntity { bundle.metadata.entities[0] }
        var uuid: String { bundle.metadata.uuid }
        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    /// Builds the target and the payload with gcc, makes the bundle with `UserBundleBuilder.build` and
    /// reads it back with `BundleReader` (checksums verified), as `suture patch activate --bundle` would.
    static func make(_ flags: [String]) throws -> Fixture {
        let dir = try TestSupport.temporaryDirectory("suture-e2e")
        try CBuild.gcc(source: targetSource, named: "t.c", in: dir, ["-O2", "-g"] + flags + ["t.c", "-o", "target"])
        try CBuild.gcc(source: fixSource, named: "fix.c", in: dir,
                       ["-c", "-O2", "-fPIC", "-ffunction-sections", "-fdata-sections", "fix.c", "-o", "fix.o"])
        let request = UserBundleRequest(target: dir.appendingPathComponent("target").path,
                                        object: dir.appendingPathComponent("fix.o").path,
                                        replacements: [.init("compute=compute_fixed")], name: "e2e", version: "1",
                                        package: "e2e", packageVersion: "1", output: dir.appendingPathComponent("bundle").path)
        let out = try UserBundleBuilder.build(request)
        return Fixture(dir: dir, target: dir.appendingPathComponent("target"),
                       bundle: try BundleReader.read(directory: out.directory))
    }

    func activateAndRevert(flags: [String]) throws {
        let f = try Self.make(flags)
        defer { f.cleanup() }
        let t = try Target(f.target)
        defer { t.stop() }
        let driver = PtraceUserPatchDriver()
        #expect(try t.ask(5) == ["result 6"])
        #expect(try driver.activate(bundle: f.bundle, entity: f.entity, pid: t.pid, startTime: nil, options: .init()) == .activated)
        #expect(t.maps.contains("/memfd:suture:\(f.uuid)"))
        #expect(try t.ask(5) == ["fix saw n=5", "result 35"], "new code calls malloc/snprintf/printf/free")
        try t.send("g3")
        #expect(try t.ask(4) == ["fix saw n=4", "result 12"], "new code reads the target's global")
        #expect(try driver.activate(bundle: f.bundle, entity: f.entity, pid: t.pid, startTime: nil, options: .init()) == .alreadyActive)
        #expect(try driver.deactivate(uuid: f.uuid, pid: t.pid, startTime: nil, options: .init()) == .deactivated)
        #expect(!t.maps.contains("suture:"))
        #expect(try t.ask(5) == ["result 6"])
    }

    @Test func pieStaticFunctionWithLibcImportsAndTargetGlobal() throws {
        try activateAndRevert(flags: ["-fPIE", "-pie"])
    }

    @Test func noPieStaticFunctionWithLibcImportsAndTargetGlobal() throws {
        try activateAndRevert(flags: ["-fno-pie", "-no-pie"])
    }

    @Test func bundleForAnotherBuildIsNotApplicable() throws {
        let f = try Self.make(["-fPIE", "-pie"])
        defer { f.cleanup() }
        // The same source built differently: another build-id, at the path the bundle names.
        let otherDir = try TestSupport.temporaryDirectory("suture-e2e-other")
        defer { try? FileManager.default.removeItem(at: otherDir) }
        try CBuild.gcc(source: Self.targetSource, named: "t.c", in: otherDir, ["-O1", "-fPIE", "-pie", "t.c", "-o", "target"])
        let t = try Target(otherDir.appendingPathComponent("target"))
        defer { t.stop() }
        var entity = f.entity
        entity.targetPath = otherDir.appendingPathComponent("target").path
        let before = t.maps
        #expect {
            _ = try PtraceUserPatchDriver().activate(bundle: f.bundle, entity: entity, pid: t.pid, startTime: nil, options: .init())
        } throws: { ($0 as? UserPatchError)?.code == .notApplicable }
        #expect(t.maps == before)
        #expect(try t.ask(5) == ["result 6"])
    }

    @Test func tamperedPayloadIsRefusedBeforeAnyAttach() throws {
        let f = try Self.make(["-fPIE", "-pie"])
        defer { f.cleanup() }
        let t = try Target(f.target)
        defer { t.stop() }
        let payload = URL(fileURLWithPath: f.bundle.path).appendingPathComponent(f.entity.payload)
        var bytes = try Data(contentsOf: payload)
        bytes[bytes.count / 2] ^= 0xff
        try bytes.write(to: payload)
        #expect(throws: (any Error).self) { _ = try BundleReader.read(directory: URL(fileURLWithPath: f.bundle.path)) }
        // A driver handed the already-read bundle re-checks the payload before touching the process: a
        // ptrace hook that fires on any stop must never run.
        let stopped = StopFlag()
        let driver = PtraceUserPatchDriver(hooks: UserPatchHooks(afterPrepare: { _ in stopped.set() },
                                                                 whileStopped: { _, _ in stopped.set() }))
        let before = t.maps
        #expect {
            _ = try driver.activate(bundle: f.bundle, entity: f.entity, pid: t.pid, startTime: nil, options: .init())
        } throws: { e in
            let e = e as! UserPatchError
            return e.code == .unpatchableFunction && e.message.contains("sha256")
        }
        #expect(!stopped.value)
        #expect(t.maps == before)
        #expect(try t.ask(5) == ["result 6"])
    }

    /// The demo of examples/demo, driven like its README: the crafted request leaks, the live fix refuses
    /// it in the same process, deactivation brings the bug back.
    @Test func demoServerFixedLiveAndBack() throws {
        let demo = TestSupport.packageRoot.appendingPathComponent("examples/demo")
        let dir = try TestSupport.temporaryDirectory("suture-demo")
        defer { try? FileManager.default.removeItem(at: dir) }
        for file in ["server.c", "fix.c", "demo.h", "fix-slot-bound.patch"] {
            try FileManager.default.copyItem(at: demo.appendingPathComponent(file), to: dir.appendingPathComponent(file))
        }
        try CBuild.check("/usr/bin/gcc", ["-O2", "-g", "-Wall", "-pthread", "-Wl,--build-id", "server.c", "-o", "demo-server"], in: dir)
        try CBuild.check("/usr/bin/gcc", ["-O2", "-g", "-Wall", "-c", "-fPIC", "-ffunction-sections", "-fdata-sections", "fix.c", "-o", "fix.o"], in: dir)
        let out = try UserBundleBuilder.build(UserBundleRequest(
            target: dir.appendingPathComponent("demo-server").path, object: dir.appendingPathComponent("fix.o").path,
            replacements: [.init("lookup_slot")], name: "demo-fix", version: "1", package: "demo-server", packageVersion: "1.0",
            patches: [dir.appendingPathComponent("fix-slot-bound.patch").path], output: dir.appendingPathComponent("bundle").path))
        let bundle = try BundleReader.read(directory: out.directory)
        #expect(bundle.metadata.entities[0].targetSymbols?.map(\.symbol) == ["rejected_requests", "table"])

        var server: Process? = nil
        var port = 0
        for attempt in 0..<20 where server == nil {
            port = 20000 + Int(getpid() % 20000) + attempt * 7
            let p = Process()
            p.executableURL = dir.appendingPathComponent("demo-server")
            p.arguments = [String(port)]
            let o = Pipe()
            p.standardOutput = o
            p.standardError = FileHandle.nullDevice
            try p.run()
            let line = String(decoding: o.fileHandleForReading.availableData, as: UTF8.self)
            if line.contains("listening") { server = p } else { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        }
        let s = try #require(server)
        // SIGKILL: children of the test runner inherit its blocked signal mask, so SIGTERM would stay pending.
        defer { kill(s.processIdentifier, SIGKILL); s.waitUntilExit() }
        func client(_ commands: [String]) throws -> [String] {
            let r = try CBuild.check("/usr/bin/bash", [demo.appendingPathComponent("client.sh").path, String(port)] + commands)
            return r.stdout.split(separator: "\n").map { String($0.split(separator: ">", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) }
        }
        #expect(try client(["GET 1", "GET 4"]) == ["OK bravo", "OK TOKEN=hunter2-do-not-leak"])
        let driver = PtraceUserPatchDriver()
        #expect(try driver.activate(bundle: bundle, entity: bundle.metadata.entities[0], pid: s.processIdentifier,
                                    startTime: nil, options: .init()) == .activated)
        #expect(try client(["GET 1", "GET 4", "STATS"]) == ["OK bravo", "ERR no such slot", "OK requests=6 rejected=1"])
        #expect(try driver.deactivate(uuid: bundle.metadata.uuid, pid: s.processIdentifier, startTime: nil, options: .init()) == .deactivated)
        #expect(try client(["GET 4"]) == ["OK TOKEN=hunter2-do-not-leak"])
        #expect(s.isRunning)
    }
}

/// A flag set from the engine's ptrace thread.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}
