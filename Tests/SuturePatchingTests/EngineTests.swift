import Foundation
import Testing
@testable import SuturePatching
import SutureCore

/// Integration tests of the ptrace engine on real processes built by gcc from
/// Tests/Fixtures/c/engine_target.c. Serialized: they stop whole processes and measure behaviour on a
/// 2-core machine.
@Suite(.serialized) struct EngineTests {
    @Test func singleThreadedActivateAndRevert() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "0")
        defer { p.stop() }
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        let request = try fx.computeRequest()
        let sym = try fx.symbol("compute")

        let r = try UserPatchEngine.activate(request, pid: p.pid)
        #expect(r.outcome == .activated)
        let c = p.settle(expectNew: true)
        #expect(c?.new ?? 0 > 0 && c?.old == 0 && c?.wrong == 0)

        // Readback: the marker and an ACTIVE header, without stopping the process.
        let regions = UserPatchEngine.readback(pid: p.pid)
        #expect(regions.count == 1)
        #expect(regions.first?.uuid == request.uuid)
        #expect(regions.first?.header?.state == .active)
        #expect(regions.first?.header?.buildID == fx.buildID)
        let maps = try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8)
        #expect(maps.contains("/memfd:suture:\(request.uuid)"))
        // W^X: no mapping of the region is writable and executable.
        for line in maps.split(separator: "\n") where line.contains("/memfd:suture:") {
            let perms = line.split(separator: " ")[1]
            #expect(!(perms.contains("w") && perms.contains("x")))
        }

        let d = try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid)
        #expect(d.outcome == .deactivated)
        let c2 = p.settle(expectNew: false)
        #expect(c2?.old ?? 0 > 0 && c2?.new == 0 && c2?.wrong == 0)
        #expect(UserPatchEngine.readback(pid: p.pid).isEmpty)
        // After revert the text bytes equal the ELF file's.
        let bias = regions.first?.header?.loadBias ?? 0
        #expect(peek(p.pid, bias + sym.offset, Int(sym.size)) == sym.bytes)
        #expect(p.isAlive)
        #expect(p.stderrText().isEmpty)
    }
}
