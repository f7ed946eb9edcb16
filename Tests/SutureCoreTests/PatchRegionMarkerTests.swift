import Foundation
import Testing
import SutureCore

/// The one marker type: names derived from each other, the region states' JSON spelling (unchanged from
/// when the state travelled as a string) and which states count as live.
struct PatchRegionMarkerTests {
    let id = "5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f"

    @Test func theMemfdNameAndTheMapsPathnameNameTheSamePatch() {
        #expect("/memfd:" + PatchRegionMarker.memfdName(for: id) == PatchRegionMarker.mapsPathname(for: id))
        #expect(PatchRegionMarker.patchID(fromMapsPathname: PatchRegionMarker.mapsPathname(for: id) + " (deleted)") == id)
        #expect(PatchRegionMarker.mapsPrefix == "\(PatchRegionMarker.mapsPrefixStatic)")
    }

    @Test func statesKeepTheirJSONSpelling() throws {
        #expect(PatchRegionMarker.State.allCases.map(\.rawValue) == ["prepared", "active", "detached", "inconsistent"])
        let json = #"{"uuid":"\#(id)","address":4096,"state":"detached"}"#
        let marker = try JSONDecoder().decode(UserPatchMarker.self, from: Data(json.utf8))
        #expect(marker.state == .detached)
        let again = try JSONDecoder().decode(UserPatchMarker.self, from: JSONEncoder().encode(marker))
        #expect(again == marker)
        let unread = try JSONDecoder().decode(UserPatchMarker.self, from: Data(#"{"uuid":"\#(id)","address":4096}"#.utf8))
        #expect(unread.state == nil)
    }

    @Test func onlyPreparedAndDetachedRegionsAreNotLive() {
        #expect(PatchRegionMarker.State.allCases.filter(\.isLive) == [.active, .inconsistent])
    }
}
