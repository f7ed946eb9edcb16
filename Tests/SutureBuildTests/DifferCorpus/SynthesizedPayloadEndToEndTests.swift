import Foundation
import Testing
import SutureBuild
import SutureCore
import SutureELF
import SuturePatching
import SutureTestSupport

/// End to end: a corpus tree built with gcc, its original target started as a real process, the payload
/// synthesized by the differ turned into a bundle, activated by the ptrace engine in the running process,
/// and the process's own output shows the fixed behaviour; deactivation brings the bug back.
@Suite(.serialized) struct SynthesizedPayloadEndToEndTests {
    /// A running corpus target (`main.c` of the lookup cases): writes `slot`, reads `result NAME LOOKUPS`.
    final class Target {
        let process = Process()
        let input = Pipe()
        let output = Pipe()
        var buffer = Data()

        init(_ executable: URL) throws {
            process.executableURL = executable
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let first = try readLine()
            guard first == "ready" else { throw CBuild.Failure(description: "target said \(first)") }
        }

        var pid: Int32 { process.processIdentifier }

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

        func ask(_ slot: Int) throws -> String {
            try input.fileHandleForWriting.write(contentsOf: Data("\(slot)\n".utf8))
            return try readLine()
        }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    /// The bundle the build pipeline would write for `result`: one entity, expected entry bytes read from
    /// the target, written by `BundleWriter` and read back (checksums verified).
    static func bundle(for result: SynthesisResult, target: URL, in dir: URL) throws -> ResolvedBundle {
        let elf = try ELFObjectFile(path: target.path)
        let base = try elf.linkBase()
        let functions = try result.functions.map { f in
            let bytes = try elf.bytes(atVirtualAddress: base + f.offset, count: Int(min(f.size, 16)))
            return FunctionPatch(symbol: f.symbol, offset: f.offset, size: f.size,
                                 expectedBytes: bytes.map { String(format: "%02x", $0) }.joined(), replacement: f.replacement)
        }
        let entity = BundleEntity(targetPath: target.path, targetBuildID: try #require(try elf.buildID()),
                                  payload: "target.o", payloadSHA256: "", functions: functions, imports: result.imports,
                                  targetSymbols: result.targetSymbols.map { TargetSymbol(symbol: $0.payloadSymbol, offset: $0.offset) },
                                  targetLinkBase: base)
        // The payload must pass the linker's validation as `bundle create` does.
        _ = try PatchImageLinker(object: Array(try Data(contentsOf: URL(fileURLWithPath: result.payload))), entity: entity)
        let metadata = BundleMetadata(name: "differ-e2e", version: "1", release: "1", uuid: UUID().uuidString.lowercased(),
                                      kind: .user, description: "synthesized", target: BundleTarget(package: "corpus", version: "1", arch: "x86_64"),
                                      entities: [entity], patches: [])
        let written = try BundleWriter.write(metadata, payloads: ["target.o": URL(fileURLWithPath: result.payload)],
                                             to: dir.appendingPathComponent("bundle"))
        return try BundleReader.read(directory: URL(fileURLWithPath: written.path))
    }

    @Test(arguments: [
        ("new-string-literal", "result out of range 2"),
        ("cf-protection", "result none 2"),
        ("stripped-target", "result none 2"),
    ])
    func synthesizedFixActivatesInRunningProcess(_ name: String, _ fixed: String) throws {
        let built = try BuiltCase.build(CorpusCase.load(name))
        defer { built.cleanup() }
        let result = try #require(try PatchSynthesizer.synthesize(built.request))
        let bundle = try Self.bundle(for: result, target: built.target, in: built.dir)
        let t = try Target(built.target)
        defer { t.stop() }
        #expect(try t.ask(4) == "result TOKEN=hunter2 1", "the bug: slot 4 leaks the private entry")
        let driver = PtraceUserPatchDriver()
        #expect(try driver.activate(bundle: bundle, entity: bundle.metadata.entities[0], pid: t.pid, startTime: nil,
                                    options: .init()) == .activated)
        // The fixed code answers, and it counts in the target's own `lookups` (2, not a private copy's 1).
        #expect(try t.ask(4) == fixed)
        #expect(try t.ask(1) == "result bravo 3")
        #expect(try driver.deactivate(uuid: bundle.metadata.uuid, pid: t.pid, startTime: nil, options: .init()) == .deactivated)
        #expect(try t.ask(4) == "result TOKEN=hunter2 4")
    }
}
