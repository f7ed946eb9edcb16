import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// `suture bundle create` through the built binary.
@Suite struct BundleCreateCommandTests {
    static let target = """
    #include <stdio.h>
    int hits;
    static int __attribute__((noinline, noclone)) check(int x) { if (x > 10) hits++; return x > 10 ? x - 10 : x + 3; }
    int __attribute__((noinline)) tiny(void) { return 0; }
    int main(int argc, char **argv) { printf("%d %d\\n", check(argc), tiny()); return hits; }
    """
    static let fix = """
    extern int hits;
    int check_v2(int x) { hits += 2; return x * 2; }
    """

    @Test func userBundleIsWrittenAndVerifies() throws {
        let dir = try TestSupport.temporaryDirectory("suture-cli-create")
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.target, named: "t.c", in: dir, ["-O2", "t.c", "-o", "svc"])
        try CBuild.gcc(source: Self.fix, named: "fix.c", in: dir, ["-c", "-O2", "-fPIC", "fix.c", "-o", "fix.o"])
        try "--- a/t.c\n+++ b/t.c\n".write(to: dir.appendingPathComponent("fix.patch"), atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out")
        let r = try SutureRun.run(["bundle", "create", "--kind", "user", "--target", dir.appendingPathComponent("svc").path,
                                   "--object", dir.appendingPathComponent("fix.o").path, "--replace", "check=check_v2",
                                   "--name", "FIX-7", "--version", "2", "--package", "svc", "--package-version", "1.0",
                                   "--patch", dir.appendingPathComponent("fix.patch").path, "--output", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("created svc-1.0/FIX-7"))
        #expect(r.stdout.contains("-> check_v2") && r.stdout.contains("target symbols: hits"))
        let bundle = try BundleReader.read(directory: out)
        #expect(bundle.metadata.kind == .user && bundle.metadata.version == "2")
        #expect(bundle.metadata.entities.first?.functions?.first?.symbol == "check")
        #expect(bundle.metadata.entities.first?.targetSymbols?.map(\.symbol) == ["hits"])
        #expect(try SutureRun.run(["bundle", "verify", out.path]).status == 0)
        // An existing output directory is never overwritten.
        let again = try SutureRun.run(["bundle", "create", "--kind", "user", "--target", dir.appendingPathComponent("svc").path,
                                       "--object", dir.appendingPathComponent("fix.o").path, "--replace", "check=check_v2",
                                       "--name", "FIX-7", "--version", "2", "--output", out.path])
        #expect(again.status == 1)
    }

    @Test func refusalsExitOneWithTheReasonAndWriteNothing() throws {
        let dir = try TestSupport.temporaryDirectory("suture-cli-create")
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.target, named: "t.c", in: dir, ["-O2", "t.c", "-o", "svc"])
        try CBuild.gcc(source: Self.fix, named: "fix.c", in: dir, ["-c", "-O2", "-fPIC", "fix.c", "-o", "fix.o"])
        let out = dir.appendingPathComponent("out")
        let r = try SutureRun.run(["bundle", "create", "--kind", "user", "--target", dir.appendingPathComponent("svc").path,
                                   "--object", dir.appendingPathComponent("fix.o").path, "--replace", "tiny=check_v2",
                                   "--name", "X", "--version", "1", "--package", "svc", "--package-version", "1", "--output", out.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("tiny") && r.stderr.contains("shorter than"))
        #expect(!FileManager.default.fileExists(atPath: out.path))
        let missing = try SutureRun.run(["bundle", "create", "--kind", "user", "--target", dir.appendingPathComponent("svc").path,
                                         "--name", "X", "--version", "1"])
        #expect(missing.status != 0 && missing.stderr.contains("--object"))
    }

    @Test func kernelBundleFromALivepatchModule() throws {
        let dir = try TestSupport.temporaryDirectory("suture-cli-create")
        defer { try? FileManager.default.removeItem(at: dir) }
        let module = TestSupport.fixtures.appendingPathComponent("bundles/kernel-livepatch-sample/livepatch_sample.ko")
        let out = dir.appendingPathComponent("kb")
        let r = try SutureRun.run(["bundle", "create", "--kind", "kernel", "--module", module.path, "--version", "3",
                                   "--output", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let bundle = try BundleReader.read(directory: out)
        #expect(bundle.metadata.kind == .kernel && bundle.metadata.version == "3")
        #expect(bundle.metadata.entities.first?.moduleName == "livepatch_sample")
        let wrong = try SutureRun.run(["bundle", "create", "--kind", "kernel", "--module", module.path,
                                       "--replace", "f", "--output", dir.appendingPathComponent("x").path])
        #expect(wrong.status != 0 && wrong.stderr.contains("--kind user"))
    }
    /// `--target` through a symbolic link records the real path, so a manifest naming the real file (the
    /// path `/proc/PID/maps` shows) validates; `--install-path` records the path given instead.
    @Test func targetThroughALinkRecordsTheResolvedPath() throws {
        let dir = try TestSupport.temporaryDirectory("suture-cli-create")
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.target, named: "t.c", in: dir, ["-O2", "t.c", "-o", "svc-1.2"])
        try CBuild.gcc(source: Self.fix, named: "fix.c", in: dir, ["-c", "-O2", "-fPIC", "fix.c", "-o", "fix.o"])
        let real = dir.resolvingSymlinksInPath().appendingPathComponent("svc-1.2").path
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("bin"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("bin/svc").path,
                                                   withDestinationPath: "../svc-1.2")
        func create(_ output: String, _ extra: [String] = []) throws -> SutureRun {
            try SutureRun.run(["bundle", "create", "--kind", "user", "--target", dir.appendingPathComponent("bin/svc").path,
                               "--object", dir.appendingPathComponent("fix.o").path, "--replace", "check=check_v2",
                               "--name", "FIX-7", "--version", "2", "--package", "svc", "--package-version", "1.0",
                               "--output", dir.appendingPathComponent(output).path] + extra)
        }
        let r = try create("linked")
        #expect(r.status == 0, "\(r.stderr)")
        let bundle = try BundleReader.read(directory: dir.appendingPathComponent("linked"))
        #expect(bundle.metadata.entities.map(\.targetPath) == [real])

        try Data("""
        apiVersion: suture.dev/v1
        kind: PatchSet
        metadata: {name: svc}
        spec:
          patches:
            - name: FIX-7
              bundle: linked
              state: activated
              target: {path: \(real)}
        """.utf8).write(to: dir.appendingPathComponent("svc.yaml"))
        let validate = try SutureRun.run(["validate", dir.appendingPathComponent("svc.yaml").path,
                                          "--root", dir.path])
        #expect(validate.status == 0, "\(validate.stderr)")

        let installed = try create("installed", ["--install-path", "/usr/libexec/svc/svc"])
        #expect(installed.status == 0, "\(installed.stderr)")
        let other = try BundleReader.read(directory: dir.appendingPathComponent("installed"))
        #expect(other.metadata.entities.map(\.targetPath) == ["/usr/libexec/svc/svc"])
        let relative = try create("relative", ["--install-path", "svc"])
        #expect(relative.status == 1 && relative.stderr.contains("--install-path svc is not absolute"))
    }
}
