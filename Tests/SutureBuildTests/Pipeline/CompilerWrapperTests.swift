import Foundation
import SutureBuild
import SutureELF
import SutureTestSupport
import Testing

/// The generated wrapper scripts, run with the system gcc on real sources.
@Suite struct CompilerWrapperTests {
    struct Sandbox {
        let root: URL
        let bin: URL
        let recordDirectory: URL
        let compilers: [String: String]

        init() throws {
            root = try TestSupport.temporaryDirectory("suture-wrapper")
            bin = root.appendingPathComponent("bin")
            recordDirectory = root.appendingPathComponent("records")
            try FileManager.default.createDirectory(at: recordDirectory, withIntermediateDirectories: true)
            compilers = try CompilerWrapper.install(in: bin, path: "/usr/local/bin:/usr/bin:/bin")
            try "int helper(int x) { return x * 3; }\nint twice(int x) { return helper(x) * 2; }\nint data_one = 7;\n"
                .write(to: root.appendingPathComponent("a.c"), atomically: true, encoding: .utf8)
            try "int main(void) { return 0; }\n".write(to: root.appendingPathComponent("main.c"), atomically: true, encoding: .utf8)
        }

        /// Runs a shell command line in the sandbox with the wrapper's environment.
        @discardableResult
        func sh(_ command: String, mode: String = "instrument") throws -> CBuild.Output {
            try CBuild.check("/usr/bin/env", ["PATH=\(bin.path):/usr/bin:/bin", "SUTURE_CC_LOG=\(recordDirectory.path)",
                                              "SUTURE_CC_MODE=\(mode)", "SUTURE_CC_PREFIX=\(root.path)",
                                              "/bin/sh", "-c", command], in: root)
        }

        func records() throws -> [CompilerWrapper.Record] { try CompilerWrapper.readRecords(in: recordDirectory) }

        func cleanup() { try? FileManager.default.removeItem(at: root) }
    }

    @Test func compileGetsFunctionAndDataSectionsAndDebugInfo() throws {
        let s = try Sandbox()
        defer { s.cleanup() }
        #expect(s.compilers["gcc"] != nil && s.compilers["cc"] != nil)
        try s.sh("gcc -O2 -c a.c -o a.o")
        let records = try s.records()
        #expect(records.count == 1)
        let args = try #require(records.first?.arguments)
        #expect(args.first == s.compilers["gcc"])
        #expect(Array(args.suffix(3)) == ["-ffunction-sections", "-fdata-sections", "-g"])
        #expect(records.first?.directory == s.root.path)
        let object = try ELFObjectFile(path: s.root.appendingPathComponent("a.o").path)
        let names = Set(object.sections.map(\.name))
        #expect(names.contains(".text.twice") && names.contains(".text.helper") && names.contains(".data.data_one"))
        #expect(names.contains(".debug_info"))
        let units = CompileLog.units(from: records, root: s.root.path)
        #expect(units == [CompiledUnit(source: "a.c", object: s.root.appendingPathComponent("a.o").path, arguments: args,
                                       directory: s.root.path)])
    }

    @Test func debugFlagAddedOnlyWhenFullDebugInfoIsNotAskedFor() throws {
        let s = try Sandbox()
        defer { s.cleanup() }
        try s.sh("gcc -O2 -g -c a.c -o a1.o && gcc -O2 -g0 -c a.c -o a2.o && gcc -O2 -gdwarf-4 -c a.c -o a3.o")
        let byObject = Dictionary(uniqueKeysWithValues: try s.records().map { ($0.arguments[$0.arguments.firstIndex(of: "-o")! + 1], $0.arguments) })
        #expect(byObject["a1.o"]?.filter { $0 == "-g" }.count == 1)
        #expect(byObject["a2.o"]?.last == "-g")
        #expect(byObject["a3.o"]?.contains("-g") == false)
    }

    @Test func linkOnlyPreprocessOnlyAndAssemblyOnlyAreUntouchedAndNotRecorded() throws {
        let s = try Sandbox()
        defer { s.cleanup() }
        try CBuild.check("/usr/bin/gcc", ["-c", "main.c", "-o", "main.o"], in: s.root)
        try s.sh("gcc main.o -o prog && gcc -E a.c -o a.i && gcc -S a.c -o a.s && gcc -M a.c > a.d")
        #expect(try s.records().isEmpty)
        // Preprocessed output identical to the real compiler's: no flag was added.
        let direct = try CBuild.check("/usr/bin/gcc", ["-E", "a.c"], in: s.root).stdout
        #expect(try String(contentsOf: s.root.appendingPathComponent("a.i"), encoding: .utf8) == direct)
        #expect(try !String(contentsOf: s.root.appendingPathComponent("a.s"), encoding: .utf8).contains(".text.twice"))
        #expect(FileManager.default.isExecutableFile(atPath: s.root.appendingPathComponent("prog").path))
    }

    @Test func defaultObjectNamesSeveralSourcesAndDependencyFiles() throws {
        let s = try Sandbox()
        defer { s.cleanup() }
        try FileManager.default.createDirectory(at: s.root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try s.sh("cd sub && cc -MD -c ../a.c ../main.c")
        let records = try s.records()
        #expect(records.count == 1)
        let units = CompileLog.units(from: records, root: s.root.path)
        #expect(units.map(\.source) == ["a.c", "main.c"])
        #expect(units.map(\.object) == [s.root.appendingPathComponent("sub/a.o").path, s.root.appendingPathComponent("sub/main.o").path])
        #expect(FileManager.default.fileExists(atPath: s.root.appendingPathComponent("sub/a.d").path))
        #expect(units.allSatisfy { $0.directory == s.root.appendingPathComponent("sub").path })
    }

    @Test func compileAndLinkIsInstrumentedAndRecorded() throws {
        let s = try Sandbox()
        defer { s.cleanup() }
        try s.sh("gcc -O2 a.c main.c -o prog")
        let records = try s.records()
        #expect(records.count == 1)
        #expect(records.first?.arguments.contains("-ffunction-sections") == true)
        let invocation = CompilerInvocation(arguments: Array(records[0].arguments.dropFirst()))
        #expect(invocation.compilesAndLinks)
        #expect(FileManager.default.isExecutableFile(atPath: s.root.appendingPathComponent("prog").path))
    }

    @Test func plainModeMapsTheBuildDirectoryAndAddsNothingElse() throws {
        let s = try Sandbox()
        defer { s.cleanup() }
        try s.sh("gcc -O2 -c a.c -o a.o", mode: "plain")
        let args = try #require(try s.records().first?.arguments)
        #expect(args.last == "-ffile-prefix-map=\(s.root.path)=.")
        #expect(!args.contains("-ffunction-sections") && !args.contains("-g"))
    }

    @Test func realCompilerLookupSkipsTheWrapperDirectory() throws {
        let s = try Sandbox()
        defer { s.cleanup() }
        let found = CompilerWrapper.realCompiler("gcc", path: "\(s.bin.path):/usr/bin", excluding: s.bin.path)
        #expect(found == "/usr/bin/gcc")
    }
}
