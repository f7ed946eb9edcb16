import Foundation
import SystemPackage

/// Where Suture keeps its run-time and persistent state, under an injectable root (`--root`, default `/`).
///
/// Layout (fixed by the `suture apply` issue):
/// - `<root>/run/suture/lock`: the run lock (`flock`), holding JSON holder info;
/// - `<root>/var/lib/suture/journal`: the journal of the last `apply` run (JSON lines, fsync'd);
/// - `<root>/var/lib/suture/generations/N.json`: one record per successful apply;
/// - `<root>/var/lib/suture/store/<uuid>/`: the patch store (written by `PatchStore`);
/// - `<root>/var/lib/suture/trash/`: bundles removed by a run in progress, kept until the run ends so a
///   rollback can reinstall them;
/// - `<root>/etc/suture/manifests.d/local.yaml`: the manifest written by `suture patch accept`;
/// - `<root>/etc/suture/suture.yaml`: the reconcile configuration.
public struct StatePaths: Sendable, Hashable {
    /// The root directory (`/` on a real host).
    public var root: String

    /// Creates the layout under `root`.
    public init(root: String = "/") { self.root = root }

    /// `root` joined with an absolute path (`/run/suture` → `<root>/run/suture`).
    public func path(_ absolute: String) -> String {
        if root == "/" || root.isEmpty { return absolute }
        return (root.hasSuffix("/") ? String(root.dropLast()) : root) + absolute
    }

    /// `<root>/run/suture/lock`.
    public var lock: String { path("/run/suture/lock") }
    /// `<root>/var/lib/suture`.
    public var stateDirectory: String { path("/var/lib/suture") }
    /// `<root>/var/lib/suture/journal`.
    public var journal: String { path("/var/lib/suture/journal") }
    /// `<root>/var/lib/suture/generations`.
    public var generations: String { path("/var/lib/suture/generations") }
    /// `<root>/var/lib/suture/store`.
    public var store: String { path("/var/lib/suture/store") }
    /// `<root>/var/lib/suture/trash`.
    public var trash: String { path("/var/lib/suture/trash") }
    /// `<root>/var/lib/suture/saved-status.json` (`suture patch save` / `restore`).
    public var savedStatus: String { path("/var/lib/suture/saved-status.json") }
    /// `<root>/etc/suture/manifests.d`.
    public var manifestsDirectory: String { path("/etc/suture/manifests.d") }
    /// `<root>/etc/suture/manifests.d/local.yaml`.
    public var localManifest: String { path("/etc/suture/manifests.d/local.yaml") }
    /// `<root>/etc/suture/suture.yaml`.
    public var config: String { path("/etc/suture/suture.yaml") }
}

/// Creates `path` and its parents (mode 0755 for new directories, less the umask); no error when it exists.
/// - Throws: `DirectoryCreationError` naming the first directory that could not be created.
func makeDirectories(_ path: String) throws(DirectoryCreationError) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, 0o755) != 0, errno != EEXIST {
            throw DirectoryCreationError(path: current, code: errno)
        }
    }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw DirectoryCreationError(path: path, code: ENOTDIR)
    }
}

/// A state directory (`/run/suture`, `/var/lib/suture/…`) that could not be created.
public struct DirectoryCreationError: Error, Sendable, CustomStringConvertible {
    /// The directory that could not be created.
    public var path: String
    /// The `errno` of `mkdir(2)`.
    public var code: Int32

    /// `cannot create directory /run/suture: Permission denied; run as root …`.
    public var description: String {
        "cannot create directory \(path): \(errnoText(code))" + runAsRootHint(code)
    }
}

/// `; run as root …` when `code` is a permission error and this process is not root, else empty: the
/// state Suture changes (store, journal, lock, generations) belongs to root.
func runAsRootHint(_ code: Int32) -> String {
    guard code == EACCES || code == EPERM, geteuid() != 0 else { return "" }
    return "; run as root (sudo): suture keeps the host's patch state under /run/suture and /var/lib/suture"
}

/// The current `errno` as text (`strerror`).
func errnoText(_ code: Int32 = errno) -> String { Errno(rawValue: code).description }

/// Writes `data` to `path` durably and atomically: a temporary file next to it, `fsync`, then `rename`.
/// - Throws: `StateFileError` naming the temporary file (cannot create) or `path` (short write, failed
///   fsync or rename); the temporary file is removed on failure.
func writeFileDurably(_ data: Data, to path: String) throws(StateFileError) {
    let tmp = path + ".tmp.\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw StateFileError(path: tmp, message: errnoText()) }
    let n = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    let synced = fsync(fd) == 0
    close(fd)
    guard n == data.count, synced, rename(tmp, path) == 0 else {
        unlink(tmp)
        throw StateFileError(path: path, message: "cannot write: \(errnoText())")
    }
}
