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
}
