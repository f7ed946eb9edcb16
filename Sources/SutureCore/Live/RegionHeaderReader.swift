import Foundation

/// Reads the headers of Suture patch regions inside live processes (implemented by `SuturePatching`'s
/// engine readback: process_vm_readv, no process is stopped), so ``LiveStateReader`` returns a finished
/// live state: a region whose header says PREPARED (never committed) or whose detours were removed is not
/// taken for a live patch.
public protocol RegionHeaderReader: Sendable {
    /// Sets ``UserPatchMarker/state`` of each of `markers` (the Suture regions of process `pid`) from its
    /// region header. A marker whose header cannot be read keeps its state.
    func readStates(of markers: inout [UserPatchMarker], pid: Int32)
}

/// Whether `root`'s processes are this host's live processes (`root` is `/`, or its `proc` resolves to the
/// live `/proc`, as in a chroot or a test root): only then can region headers be read from them.
public func readsLiveProcesses(root: String) -> Bool {
    root == "/" || URL(fileURLWithPath: root).appendingPathComponent("proc").resolvingSymlinksInPath().path == "/proc"
}
