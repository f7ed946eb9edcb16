import Foundation
import SutureCore

/// Fills `UserPatchMarker.state` of every Suture region in `live` from the engine's readback of its header
/// (process_vm_readv; no process is stopped), on the live system only (`root` is `/`, or a root whose `proc`
/// resolves to the live `/proc`, as in a chroot or a test root). `plan`, `status` and
/// `apply` all read the live state through this, so a saved plan's fingerprint and the one `apply` computes
/// agree, and a PREPARED (never committed) region is not taken for a live patch.
public func fillRegionHeaderStates(_ live: inout LiveState, root: String) {
    guard readsLiveProcesses(root: root) else { return }
    for i in live.processes.indices where !live.processes[i].patches.isEmpty {
        let regions = UserPatchEngine.readback(pid: live.processes[i].pid)
        for j in live.processes[i].patches.indices {
            let uuid = live.processes[i].patches[j].uuid
            if let state = regions.first(where: { $0.uuid == uuid })?.effectiveState {
                live.processes[i].patches[j].state = state
            }
        }
    }
}

/// Whether `root`'s processes are this host's live processes (`root` is `/`, or its `proc` resolves to the
/// live `/proc`, as in a chroot or a test root): only then can region headers be read from them.
public func readsLiveProcesses(root: String) -> Bool {
    root == "/" || URL(fileURLWithPath: root).appendingPathComponent("proc").resolvingSymlinksInPath().path == "/proc"
}
