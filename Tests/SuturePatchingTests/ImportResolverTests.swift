import Foundation
import Testing
import SutureTestSupport
@testable import SuturePatching

/// `ImportResolver` against a real running process that prints its own view of the addresses.
@Suite struct ImportResolverTests {
    static let source = """
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <unistd.h>
    int main(void) {
        printf("printf=%p malloc=%p strlen=%p memcpy=%p\\n", (void *)printf, (void *)malloc, (void *)strlen, (void *)memcpy);
        fflush(stdout);
        char c;
        while (read(0, &c, 1) > 0) {}
        return 0;
    }
    """

    @Test func resolvesWhatTheProcessItselfSees() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.source, named: "p.c", in: dir, ["-O1", "-fPIE", "-pie", "p.c", "-o", "p"])
        let p = Process()
        p.executableURL = dir.appendingPathComponent("p")
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        defer {
            try? input.fileHandleForWriting.close()
            p.terminate()
            p.waitUntilExit()
        }
        var line = Data()
        while !line.contains(0x0a) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        var printed: [String: UInt64] = [:]
        for field in String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let kv = field.split(separator: "=")
            if kv.count == 2, kv[1].hasPrefix("0x") { printed[String(kv[0])] = UInt64(kv[1].dropFirst(2), radix: 16) }
        }
        try #require(printed.count == 4, "process printed: \(String(decoding: line, as: UTF8.self))")

        let resolver = try ImportResolver(pid: p.processIdentifier)
        #expect(resolver.objects.first.map { ($0.path as NSString).lastPathComponent.hasPrefix("libc") } == true)
        for name in ["printf", "malloc"] {
            let r = try #require(try resolver.resolve(name))
            #expect(r.address == printed[name], "\(name)")
            #expect(!r.viaIFunc)
        }
        // strlen and memcpy are GNU indirect functions: the process sees the selected implementation.
        let strlen = try #require(try resolver.resolve("strlen"))
        #expect(strlen.viaIFunc)
        #expect(strlen.address == printed["strlen"])
        #expect(resolver.address(of: "memcpy") == printed["memcpy"])
        #expect(try resolver.resolve("memcpy")?.version == "GLIBC_2.14")
        #expect(resolver.address(of: "no_such_symbol_anywhere") == nil)
    }

    @Test func mapsParsingPutsLibcFirstAndSkipsAnonymousAndMemfd() {
        let maps = """
        55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234 /usr/bin/demo
        55d0c0a01000-55d0c0a02000 r-xp 00001000 08:01 1234 /usr/bin/demo
        7f0000000000-7f0000001000 r-xp 00000000 00:01 99 /memfd:suture:abc (deleted)
        7f1000000000-7f1000028000 r--p 00000000 08:01 555 /usr/lib/x86_64-linux-gnu/libc.so.6
        7f1000028000-7f100019d000 r-xp 00028000 08:01 555 /usr/lib/x86_64-linux-gnu/libc.so.6
        7f2000000000-7f2000021000 rw-p 00000000 00:00 0
        7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
        """
        let objects = ImportResolver.parseMaps(maps)
        #expect(objects.map(\.path) == ["/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/demo"])
        #expect(objects[0].start == 0x7f10_0000_0000 && objects[0].inode == 555)
    }
}
