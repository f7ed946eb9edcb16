import SutureBuild
import Testing

@Suite struct CompilerInvocationTests {
    @Test func compileWithOutputNamesThatObject() {
        let i = CompilerInvocation(arguments: ["-O2", "-I", "include", "-DX=1", "-c", "src/a.c", "-o", "obj/a.o"])
        #expect(i.compilesToObject)
        #expect(!i.compilesAndLinks)
        #expect(i.outputs == [.init(source: "src/a.c", object: "obj/a.o")])
    }

    @Test func compileWithoutOutputWritesBaseNameDotOInTheWorkingDirectory() {
        let i = CompilerInvocation(arguments: ["-c", "src/lib/inet_net_pton.c", "-O2"])
        #expect(i.outputs == [.init(source: "src/lib/inet_net_pton.c", object: "inet_net_pton.o")])
        let joined = CompilerInvocation(arguments: ["-c", "x.cpp", "-oout/x.o"])
        #expect(joined.outputs == [.init(source: "x.cpp", object: "out/x.o")])
    }

    @Test func severalSourcesGiveOneObjectEach() {
        let i = CompilerInvocation(arguments: ["-c", "a.c", "dir/b.cc", "-Wall"])
        #expect(i.outputs.map(\.object) == ["a.o", "b.o"])
        #expect(i.outputs.map(\.source) == ["a.c", "dir/b.cc"])
    }

    @Test func dependencyOptionValuesAreNotSources() {
        let i = CompilerInvocation(arguments: ["-MD", "-MT", "x.c", "-MF", "deps/x.c.d", "-c", "x.c", "-o", "x.o", "-include", "config.h"])
        #expect(i.outputs == [.init(source: "x.c", object: "x.o")])
    }

    @Test func preprocessAssemblyAndDependencyOnlyRunsHaveNoObject() {
        for stop in ["-E", "-S", "-M", "-MM", "-fsyntax-only"] {
            let i = CompilerInvocation(arguments: ["-c", "a.c", stop])
            #expect(!i.compilesToObject, "\(stop)")
            #expect(!i.compilesAndLinks, "\(stop)")
            #expect(i.outputs.isEmpty, "\(stop)")
        }
    }

    @Test func linkOnlyHasNoSource() {
        let i = CompilerInvocation(arguments: ["-shared", "a.o", "b.o", "-o", "libx.so", "-lm", "-Wl,--build-id"])
        #expect(!i.compilesToObject)
        #expect(!i.compilesAndLinks)
        #expect(i.outputs.isEmpty)
    }

    @Test func explicitLanguageMakesAnyNameASource() {
        let i = CompilerInvocation(arguments: ["-x", "c", "-c", "table.def", "-o", "table.o"])
        #expect(i.outputs == [.init(source: "table.def", object: "table.o")])
    }

    @Test func compileAndLinkIsRecompiledAloneWithoutTheLinkOutput() {
        let i = CompilerInvocation(arguments: ["-O2", "-g", "-pthread", "-Wl,--build-id", "server.c", "util.c", "-o", "bin/demo-server", "-lm"])
        #expect(i.compilesAndLinks)
        #expect(!i.compilesToObject)
        #expect(i.outputs.map(\.object) == [".suture-objects/demo-server/server.c.o", ".suture-objects/demo-server/util.c.o"])
        #expect(i.compileOnly(i.outputs[0]) ==
                ["-O2", "-g", "-pthread", "-Wl,--build-id", "server.c", "-lm", "-c", "-o", ".suture-objects/demo-server/server.c.o"])
        #expect(i.compileOnly(i.outputs[1]) ==
                ["-O2", "-g", "-pthread", "-Wl,--build-id", "util.c", "-lm", "-c", "-o", ".suture-objects/demo-server/util.c.o"])
    }
}
