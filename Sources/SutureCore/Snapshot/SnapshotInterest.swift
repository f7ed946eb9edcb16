import Foundation

/// What a snapshot records about processes: since the manifests a reviewer will plan against are not
/// known when the host takes its snapshot, the snapshot covers every ELF object that any process maps
/// executable, plus the targets of the host's own manifests and store.
public enum SnapshotInterest {
    /// Distinct paths of file-backed executable mappings in every `/proc/[0-9]*/maps` under `root`
    /// (markers, anonymous and special mappings excluded), sorted. Vanished or unreadable processes are
    /// skipped: the live-state reader reports permission problems itself.
    public static func executableObjects(root: String) -> [String] {
        let proc = root == "/" ? "/proc" : (root.hasSuffix("/") ? root + "proc" : root + "/proc")
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: proc) else { return [] }
        var paths = Set<String>()
        for entry in entries where entry.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            guard let text = try? String(contentsOfFile: "\(proc)/\(entry)/maps", encoding: .utf8) else { continue }
            for mapping in ProcMapsParser.parse(text) where mapping.isExecutable && mapping.inode != 0 {
                let path = mapping.pathname
                guard path.hasPrefix("/"), !path.hasPrefix("/memfd:"), !path.hasPrefix("/dev/") else { continue }
                paths.insert(path)
            }
        }
        return paths.sorted()
    }
}
