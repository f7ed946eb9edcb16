import Foundation
import SutureCore
import Testing

@testable import SuturePatching

/// The live state is finished in one place: `LiveStateReader` with the engine's region-header reader
/// reports the header state of a real patched process, and the probe of `SutureHost.system` does too.
@Suite(.serialized) struct RegionHeaderReaderTests {
    @Test func liveReaderAndProbeReportTheHeaderStateOfAPatchedProcess() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "0")
        defer { p.stop() }
        let request = try fx.computeRequest()
        #expect(try UserPatchEngine.activate(request, pid: p.pid).outcome == .activated)
        defer { _ = try? UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid) }
        let interest = LiveInterest(targets: [TargetFile(path: fx.target, buildID: fx.buildID)])

        func marker(_ reader: LiveStateReader) throws -> UserPatchMarker? {
            try reader.read(interest: interest, store: []).processes.first { $0.pid == p.pid }?.patches
                .first { $0.uuid == request.uuid }
        }
        // Without a header reader the marker is found but its state is unread.
        let bare = try #require(try marker(LiveStateReader(root: "/")))
        #expect(bare.state == nil)
        // With the engine's reader the state comes from the header.
        let finished = try #require(try marker(LiveStateReader(root: "/", regionHeaders: EngineRegionHeaderReader())))
        #expect(finished.state == .active)

        let host = try SutureHost.system(root: "/")
        #expect(try marker(host.liveReader)?.state == .active)
        #expect(host.probe.userPatch(uuid: request.uuid, pid: p.pid, startTime: nil) == .present(state: .active))

        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid).outcome == .deactivated)
        #expect(host.probe.userPatch(uuid: request.uuid, pid: p.pid, startTime: nil) == .absent)
        #expect(p.isAlive)
    }
}
