import Foundation
import SutureBuild
import SutureELF
import SutureTestSupport
import Testing

/// The pipeline's phases before the differ, on a small make-built tree: early refusals, the incremental
/// patched build, the cache, and the plain rebuild that reproduces a build-id.
@Suite struct BuildPipelineTests {
    /// A two-unit library + program tree built by make.
    static func makeTree(in root: URL) throws -> URL {
        let src = root.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: src, withIntermediateDirectories: true)
        let files = [
            "Makefile": """
                CC ?= gcc
                CFLAGS ?= -O2 -g
                all: prog
                prog: main.o calc.o
                \t$(CC) $(CFLAGS) -Wl,--build-id main.o calc.o -o prog
                %.o: %.c calc.h
                \t$(CC) $(CFLAGS) -c $< -o $@

                """,
            "calc.h": "int calc(int x);\n",
            "calc.c": "#include \"calc.h\"\nint calc(int x)\n{\n    return x * 3 + 1;\n}\n",
            "main.c": "#include <stdio.h>\n#include \"calc.h\"\nint main(void)\n{\n    printf(\"%d\\n\", calc(4));\n    return 0;\n}\n",
        ]
        for (name, text) in files { try text.write(to: src.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return src
    }

    static func patch(_ root: URL, _ name: String, _ text: String) throws -> String {
        let url = root.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static let commentOnly = """
        --- a/calc.c
        +++ b/calc.c
        @@ -3,3 +3,4 @@
         {
             return x * 3 + 1;
         }
        +/* reviewed */

        """

    func options(_ root: URL, _ src: URL, patches: [String], work: String = "work") -> BuildOptions {
        BuildOptions(source: src.path, patches: patches, buildCommand: "make", name: "fix", version: "1", jobs: 2,
                     output: root.appendingPathComponent("bundle").path, workDirectory: root.appendingPathComponent(work).path,
                     cacheDirectory: root.appendingPathComponent("cache").path)
    }

    @Test func aPatchThatDoesNotApplyStopsBeforeAnyBuild() throws {
        let root = try TestSupport.temporaryDirectory("suture-pipeline")
        defer { try? FileManager.default.removeItem(at: root) }
        let src = try Self.makeTree(in: root)
        let bad = try Self.patch(root, "bad.patch", Self.commentOnly.replacingOccurrences(of: "x * 3 + 1", with: "x * 5 + 1"))
        let report = BuildPipeline(options: options(root, src, patches: [bad])).run()
        #expect(report.error?.contains("bad.patch does not apply: calc.c: Hunk #1 FAILED") == true, "\(report.error ?? "")")
        #expect(report.phases.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("cache").path))
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("bundle").path))
    }

    @Test func aFailingBuildCommandNamesItsStatusAndLog() throws {
        let root = try TestSupport.temporaryDirectory("suture-pipeline")
        defer { try? FileManager.default.removeItem(at: root) }
        let src = try Self.makeTree(in: root)
        try "int calc(int x) { return oops; }\n".write(to: src.appendingPathComponent("calc.c"), atomically: true, encoding: .utf8)
        let p = try Self.patch(root, "p.patch", """
            --- a/main.c
            +++ b/main.c
            @@ -1,2 +1,3 @@
            +/* x */
             #include <stdio.h>
             #include "calc.h"

            """)
        let report = BuildPipeline(options: options(root, src, patches: [p])).run()
        let error = report.error ?? ""
        #expect(error.contains("the original build failed: `make` exited with status 2"), "\(error)")
        #expect(error.contains("logs/original-build.log") && error.contains("oops"), "\(error)")
        #expect(report.workKept)
    }

    @Test func incrementalPatchedBuildRecompilesOnlyTheTouchedUnitAndTheCacheIsReused() throws {
        let root = try TestSupport.temporaryDirectory("suture-pipeline")
        defer { try? FileManager.default.removeItem(at: root) }
        let src = try Self.makeTree(in: root)
        let p = try Self.patch(root, "comment.patch", Self.commentOnly)
        let first = BuildPipeline(options: options(root, src, patches: [p])).run()
        // A comment after the last line changes no code and no line number: nothing to patch.
        #expect(first.error?.contains("the patches change no compiled code: the patched build recompiled 1 unit") == true,
                "\(first.error ?? "")")
        #expect(first.phases.map(\.name) == ["prepare", "original build", "patched build"])
        #expect(first.phases[1].detail.hasPrefix("2 compiles"), "\(first.phases[1].detail)")
        let patched = try CompileLog.read(root.appendingPathComponent("work/patched-compiles.jsonl"))
        #expect(patched.map(\.source) == ["calc.c"])
        let original = try CompileLog.read(root.appendingPathComponent("work/original-compiles.jsonl"))
        #expect(Set(original.map(\.source)) == ["calc.c", "main.c"])
        #expect(original.allSatisfy { $0.arguments.contains("-ffunction-sections") })
        // The source tree was not touched.
        #expect(try !String(contentsOf: src.appendingPathComponent("calc.c"), encoding: .utf8).contains("reviewed"))
        #expect(!FileManager.default.fileExists(atPath: src.appendingPathComponent("calc.o").path))

        let second = BuildPipeline(options: options(root, src, patches: [p], work: "work2")).run()
        #expect(second.phases.count == 3)
        #expect(second.phases[1].detail.hasPrefix("cached"), "\(second.phases[1].detail)")
        #expect(second.cacheEntry == first.cacheEntry)
        #expect(try CompileLog.read(root.appendingPathComponent("work2/patched-compiles.jsonl")).map(\.source) == ["calc.c"])

        // Another build command is another cache entry.
        var other = options(root, src, patches: [p], work: "work3")
        other.buildCommand = "make all"
        let third = BuildPipeline(options: other).run()
        #expect(third.cacheEntry != first.cacheEntry)
        #expect(!third.phases[1].detail.hasPrefix("cached"))
    }

    @Test func aTreeThatIsAlreadyBuiltIsRefused() throws {
        let root = try TestSupport.temporaryDirectory("suture-pipeline")
        defer { try? FileManager.default.removeItem(at: root) }
        let src = try Self.makeTree(in: root)
        try CBuild.check("/usr/bin/make", ["-s", "-C", src.path])
        let p = try Self.patch(root, "comment.patch", Self.commentOnly)
        let report = BuildPipeline(options: options(root, src, patches: [p])).run()
        #expect(report.error?.contains("the original build compiled nothing under the wrapper") == true, "\(report.error ?? "")")
    }

    @Test func stripedTargetWithoutAnySymbolSourceIsRefusedSayingWhatWasTried() throws {
        let root = try TestSupport.temporaryDirectory("suture-pipeline")
        defer { try? FileManager.default.removeItem(at: root) }
        let src = try Self.makeTree(in: root)
        // The running build: another tree, no prefix map, stripped.
        let user = root.appendingPathComponent("user")
        try CBuild.check("/bin/cp", ["-a", src.path, user.path])
        try CBuild.check("/usr/bin/make", ["-s", "-C", user.path])
        try CBuild.check("/usr/bin/strip", [user.appendingPathComponent("prog").path])
        let target = try TargetFiles.check(user.appendingPathComponent("prog").path)
        #expect(!target.hasSymtab)
        let error = #expect(throws: BuildError.self) {
            try SymbolLocator.locate(target, debugRoot: root.appendingPathComponent("debug").path) { () throws(BuildError) -> [String] in
                [src.appendingPathComponent("missing-prog").path]
            }
        }
        let message = error?.message ?? ""
        #expect(message.contains("no symbols for \(target.path) (build-id \(target.buildID))"), "\(message)")
        #expect(message.contains("has no .symtab"), "\(message)")
        #expect(message.contains("debug/.build-id/\(target.buildID.prefix(2))/\(target.buildID.dropFirst(2)).debug does not exist"), "\(message)")
        #expect(message.contains("no ELF of the plain rebuild has build-id \(target.buildID)"), "\(message)")
        // --symbols with another build's file is refused by build-id.
        let other = try TargetFiles.check(src.deletingLastPathComponent().appendingPathComponent("user/prog").path)
        let unstripped = root.appendingPathComponent("other")
        try CBuild.check("/bin/cp", ["-a", src.path, unstripped.path])
        try CBuild.check("/usr/bin/make", ["-s", "-C", unstripped.path, "CFLAGS=-O1 -g"])
        let wrong = #expect(throws: BuildError.self) {
            try SymbolLocator.explicit([unstripped.appendingPathComponent("prog").path], targets: [other])
        }
        #expect(wrong?.message.contains("which no target has") == true, "\(wrong?.message ?? "")")
    }

    @Test func plainRebuildReproducesTheBuildIdOfAPrefixMappedBuildElsewhere() throws {
        let root = try TestSupport.temporaryDirectory("suture-pipeline")
        defer { try? FileManager.default.removeItem(at: root) }
        let src = try Self.makeTree(in: root)
        let user = root.appendingPathComponent("deployed-from")
        try CBuild.check("/bin/cp", ["-a", src.path, user.path])
        try CBuild.check("/usr/bin/make", ["-s", "-C", user.path, "CFLAGS=-O2 -g -ffile-prefix-map=\(user.path)=."])
        let userID = try #require(try ELFObjectFile(path: user.appendingPathComponent("prog").path).buildID())

        let tree = root.appendingPathComponent("plain")
        try CBuild.check("/bin/cp", ["-a", src.path, tree.path])
        let bin = root.appendingPathComponent("bin")
        let compilers = try CompilerWrapper.install(in: bin, path: "/usr/local/bin:/usr/bin:/bin")
        var env = ProcessInfo.processInfo.environment
        env["CFLAGS"] = "-O2 -g"
        let build = TreeBuild(command: "make", jobs: 2, wrapperDirectory: bin, compilers: compilers, baseEnvironment: env)
        let units = try build.run(in: tree, mode: "plain", records: root.appendingPathComponent("records"),
                                  log: root.appendingPathComponent("plain.log"), what: "the plain rebuild")
        #expect(units.count == 2)
        let plainID = try ELFObjectFile(path: tree.appendingPathComponent("prog").path).buildID()
        #expect(plainID == userID)
    }
}
