import Foundation

/// What the live-state readers should look for: the ELF files user patches target and the packages whose
/// installed versions the plan depends on. Everything else on the host is ignored, which keeps a scan cheap.
public struct LiveInterest: Sendable, Hashable {
    /// Target ELF files (path + expected build-id), deduplicated.
    public var targets: [TargetFile]
    /// Package names whose installed versions are read.
    public var packages: [String]

    /// Memberwise initializer; duplicates are removed and the lists sorted.
    public init(targets: [TargetFile] = [], packages: [String] = []) {
        self.targets = Array(Set(targets)).sorted { ($0.path, $0.buildID ?? "") < ($1.path, $1.buildID ?? "") }
        self.packages = Array(Set(packages)).sorted()
    }

    /// The interest of a desired state plus the bundles already in the store: every user entity's target
    /// path and build-id (an empty build-id means "any build"), and every target package that is not the
    /// kernel.
    public init(desired: DesiredState, store: [InstalledBundle] = []) {
        var targets: [TargetFile] = []
        var packages: [String] = []
        var bundles = desired.patches.compactMap(\.bundle).map(\.metadata)
        bundles += store.map(\.bundle.metadata)
        for metadata in bundles where metadata.kind == .user {
            packages.append(metadata.target.package)
            for entity in metadata.entities {
                targets.append(TargetFile(path: entity.targetPath,
                                          buildID: entity.targetBuildID.isEmpty ? nil : entity.targetBuildID))
            }
        }
        for patch in desired.patches {
            switch patch.target {
            case let .package(name, _): packages.append(name)
            case let .path(path): targets.append(TargetFile(path: path))
            case .kernel: break
            }
        }
        self.init(targets: targets, packages: packages)
    }
}

/// Assembles a ``LiveState`` from the individual readers, all under one root: ``HostInfoReader``,
/// ``KernelLivepatchReader``, ``ProcessScanner``, ``PackageDatabase`` and the patch store (``PatchStore``,
/// re-verified on every read). With a ``RegionHeaderReader`` the state of every Suture region is read from
/// its header when the root's processes are the live ones (``readsLiveProcesses(root:)``), so the returned
/// live state is finished.
public struct LiveStateReader: Sendable {
    /// The root (`/` in production, `--root` or a recorded tree otherwise).
    public let root: String
    /// Reads Suture region headers; nil leaves ``UserPatchMarker/state`` unread.
    public let regionHeaders: (any RegionHeaderReader)?

    /// Creates a reader of `root`.
    public init(root: String = "/", regionHeaders: (any RegionHeaderReader)? = nil) {
        self.root = root
        self.regionHeaders = regionHeaders
    }

    /// Reads everything the planner needs for `desired`: the store under the root is listed first, and the
    /// interest is what `desired` and the stored bundles target (``LiveInterest/init(desired:store:)``).
    /// - Throws: ``LabelsFileError`` when `/etc/suture/labels` is malformed.
    public func read(desired: DesiredState) throws(LabelsFileError) -> LiveState {
        let store = PatchStore(root: URL(fileURLWithPath: root.isEmpty ? "/" : root)).list()
        return try read(interest: LiveInterest(desired: desired, store: store), store: store)
    }

    /// Reads host facts, kernel livepatch state, the processes mapping `interest.targets` (and every process
    /// carrying a Suture marker), and the installed versions of `interest.packages`.
    ///
    /// - Parameter store: the bundles in the patch store; `nil` lists ``PatchStore`` under the root.
    /// Unreadable facts (permissions, I/O errors, an unreadable package database) are collected in
    /// ``LiveState/unreadable`` rather than thrown.
    /// - Throws: ``LabelsFileError`` when `/etc/suture/labels` is malformed (bad input is an error).
    public func read(interest: LiveInterest, store: [InstalledBundle]? = nil) throws(LabelsFileError) -> LiveState {
        let store = store ?? PatchStore(root: URL(fileURLWithPath: root.isEmpty ? "/" : root)).list()
        let host = try HostInfoReader(root: root).read()
        var unreadable: [UnreadableFact] = []
        let kernel = KernelLivepatchReader(root: root).read(unreadable: &unreadable)
        var scan = ProcessScanner(root: root).scan(targets: interest.targets)
        unreadable += scan.unreadable
        if let regionHeaders, readsLiveProcesses(root: root) {
            for i in scan.processes.indices where !scan.processes[i].patches.isEmpty {
                regionHeaders.readStates(of: &scan.processes[i].patches, pid: scan.processes[i].pid)
            }
        }
        var packages: [String: [String]] = [:]
        if !interest.packages.isEmpty {
            do {
                let installed = try PackageDatabase(root: root).installed(interest.packages)
                for (name, list) in installed where !list.isEmpty {
                    packages[name] = Array(Set(list.map(\.version))).sorted()
                }
            } catch {
                unreadable.append(UnreadableFact(path: error.source, reason: error.message,
                                                 effect: "installed package versions unknown: treated as not installed"))
            }
        }
        return LiveState(hostname: host.hostname, labels: host.labels, bootID: host.bootID,
                         kernelRelease: host.kernelRelease, kernel: kernel,
                         store: store.sorted { $0.uuid < $1.uuid }, processes: scan.processes,
                         packages: packages, unreadable: unreadable)
    }
}
