import Foundation
import SutureCore

/// The engine's readback of region headers (process_vm_readv; no process is stopped), as the
/// ``RegionHeaderReader`` that ``LiveStateReader`` and the probe ask: `plan`, `status` and `apply` all read
/// region states through it, so a saved plan's fingerprint and the one `apply` computes agree, and a
/// PREPARED (never committed) region is not taken for a live patch.
public struct EngineRegionHeaderReader: RegionHeaderReader {
    /// Creates the reader.
    public init() {}

    /// See ``RegionHeaderReader/readStates(of:pid:)``.
    public func readStates(of markers: inout [UserPatchMarker], pid: Int32) {
        guard !markers.isEmpty else { return }
        let regions = UserPatchEngine.readback(pid: pid)
        for j in markers.indices {
            let uuid = markers[j].uuid
            if let state = regions.first(where: { $0.uuid == uuid })?.effectiveState {
                markers[j].state = state
            }
        }
    }
}
