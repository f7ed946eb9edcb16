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
            if process.isRunning { process.terminate() }
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }

        var maps: String { (try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)) ?? "" }
    }

    struct Fixture {
        let dir: URL
        let target: URL
        let metadata: BundleMetadata
        let payload: [UInt8]
        var entity: BundleEntity { metadata.entities[0] }
        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    static func make(_ flags: [String]) throws -> Fixture {
        let dir = try TestSupport.temporaryDirectory("suture-e2e")
        try CBuild.gcc(source: targetSource, named: "t.c", in: dir, ["-O2", "-g"] + flags + ["t.c", "-o", "target"])
        try CBuild.gcc(source: fixSource, named: "fix.c", in: dir,
                       ["-c", "-O2", "-fPIC", "-ffunction-sections", "-fdata-sections", "fix.c", "-o", "fix.o"])
        let request = UserBundleRequest(target: dir.appendingPathComponent("target").path,
                                        object: dir.appendingPathComponent("fix.o").path,
                                        replacements: [.init("compute=compute_fixed")], name: "e2e", version: "1",
                                        package: "e2e", packageVersion: "1")
        let (metadata, _) = try UserBundleBuilder.makeMetadata(request)
        return Fixture(dir: dir, target: dir.appendingPathComponent("target"), metadata: metadata,
                       payload: Array(try Data(contentsOf: dir.appendingPathComponent("fix.o"))))
    }

    /// The engine request for a bundle entity and its payload bytes.
    static func request(_ f: Fixture, entity: BundleEntity? = nil) throws -> UserPatchRequest {
        let e = entity ?? f.entity
        let linker = try PatchImageLinker(object: f.payload, entity: e)
        let view = BundleEntityView(targetPath: e.targetPath, targetBuildID: e.targetBuildID, functions: (e.functions ?? []).map {
            .init(symbol: $0.symbol, offset: $0.offset, size: $0.size,
                  expectedBytes: PatchRegionHeader.hexBytes($0.expectedBytes) ?? [], replacement: $0.replacement)
        })
        let resolver = SharedImportResolver()
        return UserPatchRequest(uuid: f.metadata.uuid, entity: view, image: linker,
                                importResolver: { resolver.address(pid: $0, symbol: $1) })
    }

    func activateAndRevert(flags: [String]) throws {
        let f = try Self.make(flags)
        defer { f.cleanup() }
        let t = try Target(f.target)
        defer { t.stop() }
        #expect(try t.ask(5) == ["result 6"])
        let request = try Self.request(f)
        #expect(try UserPatchEngine.activate(request, pid: t.pid).outcome == .activated)
        #expect(t.maps.contains("/memfd:suture:\(f.metadata.uuid)"))
        #expect(try t.ask(5) == ["fix saw n=5", "result 35"], "new code calls malloc/snprintf/printf/free")
        try t.send("g3")
        #expect(try t.ask(4) == ["fix saw n=4", "result 12"], "new code reads the target's global")
        #expect(try UserPatchEngine.activate(request, pid: t.pid).outcome == .alreadyActive)
        #expect(try UserPatchEngine.deactivate(uuid: f.metadata.uuid, pid: t.pid).outcome == .deactivated)
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
            _ = try UserPatchEngine.activate(try Self.request(f, entity: entity), pid: t.pid)
        } throws: { ($0 as? UserPatchError)?.code == .notApplicable }
        #expect(t.maps == before)
        #expect(try t.ask(5) == ["result 6"])
    }
}
