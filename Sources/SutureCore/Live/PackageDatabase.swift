#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// An installed package.
public struct InstalledPackage: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Package name (`libssl3`).
    public var name: String
    /// Architecture (`amd64`, `all`, `x86_64`, `noarch`); empty when the database does not say.
    public var architecture: String
    /// Version as the package manager prints it, epoch included (`1:2.3-4`, `3.0.15-1~deb12u1`).
    public var version: String

    /// Memberwise initializer.
    public init(name: String, architecture: String, version: String) {
        self.name = name
        self.architecture = architecture
        self.version = version
    }

    /// `name[:arch] version`, as dpkg-query prints it.
    public var description: String { "\(name)\(architecture.isEmpty ? "" : ":" + architecture) \(version)" }
}

/// An error querying the package database.
public struct PackageDatabaseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file or command that failed.
    public var source: String
    /// What went wrong.
    public var message: String

    /// `source: message`.
    public var description: String { "\(source): \(message)" }
}

/// Answers "which package version is installed" and "which installed package owns this path" from the host's
/// package manager, under a root path.
///
/// - dpkg (Debian, Ubuntu): reads `/var/lib/dpkg/status` (deb822 paragraphs: `Package`, `Status`,
///   `Architecture`, `Version`; see dpkg(1) and deb-control(5)) and `/var/lib/dpkg/info/<pkg>.list` or, for
///   `Multi-Arch: same` packages, `<pkg>:<arch>.list` (one installed path per line) directly — no `dpkg`
///   process. A package counts as installed when its `Status` third word is `installed`, `unpacked`,
///   `half-configured`, `triggers-awaited` or `triggers-pending` (its files are on disk).
/// - rpm (Fedora, RHEL, openEuler, SUSE): when `/var/lib/rpm` or `/usr/lib/sysimage/rpm` exists under the root
///   and an `rpm` executable is on the PATH, runs `rpm --root ROOT -q` / `-qf` with a fixed `--qf` format.
///
/// Merged-/usr aliases: when `/bin`, `/sbin`, `/lib`, `/lib64` under the root are symlinks into `/usr`, an
/// owner lookup that fails for one spelling is retried with the other (`/usr/bin/ls` ↔ `/bin/ls`), since
/// dpkg records the path the package shipped.
public struct PackageDatabase: Sendable {
    /// The root (`/` in production).
    public let root: String

    /// Which package manager's database exists under the root.
    public enum Backend: String, Sendable, Hashable {
        case dpkg, rpm, none
    }

    /// Creates a database reader for `root`.
    public init(root: String = "/") {
        self.root = root
    }

    /// The backend found under the root (dpkg is preferred when both exist).
    public var backend: Backend {
        if LiveFS.exists(LiveFS.join(root, "/var/lib/dpkg/status")) { return .dpkg }
        if rpmDatabaseExists && Self.rpmExecutable != nil { return .rpm }
        return .none
    }

    private var rpmDatabaseExists: Bool {
        LiveFS.isDirectory(LiveFS.join(root, "/var/lib/rpm")) || LiveFS.isDirectory(LiveFS.join(root, "/usr/lib/sysimage/rpm"))
    }

    /// Installed versions of `name` (several for multi-arch or multi-version installs), sorted.
    /// - Throws: ``PackageDatabaseError`` when the database exists but cannot be read.
    public func installed(_ name: String) throws(PackageDatabaseError) -> [InstalledPackage] {
        try installed([name])[name] ?? []
    }

    /// Installed versions of each of `names`; names not installed map to an empty list.
    /// - Throws: ``PackageDatabaseError``.
    public func installed(_ names: [String]) throws(PackageDatabaseError) -> [String: [InstalledPackage]] {
        var result: [String: [InstalledPackage]] = [:]
        for name in names { result[name] = [] }
        switch backend {
        case .dpkg:
            let wanted = Set(names)
            for package in try dpkgPackages() where wanted.contains(package.name) {
                result[package.name, default: []].append(package)
            }
        case .rpm:
            for name in names { result[name] = try rpmQuery(["-q", name]) }
        case .none:
            break
        }
        for key in result.keys { result[key]!.sort { ($0.version, $0.architecture) < ($1.version, $1.architecture) } }
        return result
    }

    /// The installed package(s) that own `path` (an absolute path as installed); empty when none does.
    /// - Throws: ``PackageDatabaseError``.
    public func owners(of path: String) throws(PackageDatabaseError) -> [InstalledPackage] {
        try owners(of: [path])[path] ?? []
    }

    /// Owners of several paths at once (each `.list` file is read once for all of them).
    /// - Throws: ``PackageDatabaseError``.
    public func owners(of paths: [String]) throws(PackageDatabaseError) -> [String: [InstalledPackage]] {
        var result: [String: [InstalledPackage]] = [:]
        for path in paths { result[path] = [] }
        switch backend {
        case .dpkg:
            var spellings: [(needle: [UInt8], original: String)] = []   // "\n<spelling>\n" → original path
            for path in paths {
                for spelling in [path] + usrMergeAliases(of: path) {
                    spellings.append((Array(("\n" + spelling + "\n").utf8), path))
                }
            }
            for package in try dpkgPackages() {
                guard var list = dpkgListBytes(package) else { continue }
                list.insert(0x0A, at: 0)   // so the first line is also preceded by a newline
                if list.last != 0x0A { list.append(0x0A) }
                list.withUnsafeBytes { haystack in
                    for (needle, original) in spellings where !(result[original]?.contains(package) ?? false) {
                        let found = needle.withUnsafeBytes { Self.contains(haystack, $0) }
                        if found { result[original, default: []].append(package) }
                    }
                }
            }
        case .rpm:
            for path in paths {
                var found = try rpmQuery(["-qf", path])
                if found.isEmpty {
                    for alias in usrMergeAliases(of: path) {
                        found = try rpmQuery(["-qf", alias])
                        if !found.isEmpty { break }
                    }
                }
                result[path] = found
            }
        case .none:
            break
        }
        for key in result.keys { result[key]!.sort { ($0.name, $0.architecture) < ($1.name, $1.architecture) } }
        return result
    }

    // MARK: dpkg

    private static let installedStates: Set<String> = ["installed", "unpacked", "half-configured",
                                                        "triggers-awaited", "triggers-pending"]

    /// Every installed package in `/var/lib/dpkg/status`.
    /// - Throws: ``PackageDatabaseError`` when the file cannot be read.
    public func dpkgPackages() throws(PackageDatabaseError) -> [InstalledPackage] {
        let file = LiveFS.join(root, "/var/lib/dpkg/status")
        guard case let .content(text) = LiveFS.read(file) else {
            throw PackageDatabaseError(source: file, message: "cannot read the dpkg status database")
        }
        return Self.parseDpkgStatus(text)
    }

    /// Parses the text of a dpkg status file into its installed packages (see the type's documentation for
    /// which states count). Paragraphs without `Package` or `Version` are skipped.
    public static func parseDpkgStatus(_ text: String) -> [InstalledPackage] {
        // Byte-level (the status file is ~0.7 MB on a small Debian host, and the plan path reads it on every
        // run: a Character-based split was a top entry of the plan path's profile).
        var packages: [InstalledPackage] = []
        var name = "", version = "", architecture = "", status = ""
        func flush() {
            let words = status.split(separator: " ")
            if !name.isEmpty, !version.isEmpty, words.count == 3, installedStates.contains(String(words[2])) {
                packages.append(InstalledPackage(name: name, architecture: architecture, version: version))
            }
            name = ""; version = ""; architecture = ""; status = ""
        }
        var copy = text
        copy.withUTF8 { bytes in
            let n = bytes.count
            var lineStart = 0
            while lineStart <= n {
                var lineEnd = lineStart
                while lineEnd < n && bytes[lineEnd] != 0x0A { lineEnd += 1 }
                defer { lineStart = lineEnd + 1 }
                var blank = true
                for i in lineStart..<lineEnd where !(bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0D) {
                    blank = false
                    break
                }
                if blank { flush(); if lineEnd >= n { break }; continue }
                if bytes[lineStart] == 0x20 || bytes[lineStart] == 0x09 { continue }   // continuation line
                var colon = lineStart
                while colon < lineEnd && bytes[colon] != 0x3A { colon += 1 }
                if colon == lineEnd { continue }
                func fieldIs(_ s: StaticString) -> Bool {
                    let len = s.utf8CodeUnitCount
                    guard colon - lineStart == len else { return false }
                    for k in 0..<len where bytes[lineStart + k] != s.utf8Start[k] { return false }
                    return true
                }
                var v0 = colon + 1, v1 = lineEnd
                while v0 < v1 && (bytes[v0] == 0x20 || bytes[v0] == 0x09) { v0 += 1 }
                while v1 > v0 && (bytes[v1 - 1] == 0x20 || bytes[v1 - 1] == 0x09 || bytes[v1 - 1] == 0x0D) { v1 -= 1 }
                func value() -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[v0..<v1]), as: UTF8.self) }
                if fieldIs("Package") { name = value() }
                else if fieldIs("Version") { version = value() }
                else if fieldIs("Architecture") { architecture = value() }
                else if fieldIs("Status") { status = value() }
            }
        }
        flush()
        return packages
    }

    /// The `.list` bytes of a package: `<name>:<arch>.list` (multi-arch same) or `<name>.list`.
    private func dpkgListBytes(_ package: InstalledPackage) -> [UInt8]? {
        let info = LiveFS.join(root, "/var/lib/dpkg/info/")
        if !package.architecture.isEmpty,
           case let .success(bytes) = LiveFS.readBytes(info + package.name + ":" + package.architecture + ".list") {
            return bytes
        }
        if case let .success(bytes) = LiveFS.readBytes(info + package.name + ".list") { return bytes }
        return nil
    }

    /// `needle` occurs in `haystack` (`memchr` for the first byte, then a compare).
    private static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: UnsafeRawBufferPointer) -> Bool {
        guard let hay = haystack.baseAddress, let first = needle.first, needle.count <= haystack.count else {
            return needle.isEmpty
        }
        var offset = 0
        let last = haystack.count - needle.count
        while offset <= last {
            guard let hit = memchr(hay + offset, Int32(first), last - offset + 1) else { return false }
            let position = hay.distance(to: UnsafeRawPointer(hit))
            if memcmp(hay + position, needle.baseAddress!, needle.count) == 0 { return true }
            offset = position + 1
        }
        return false
    }

    /// Other spellings of `path` under merged /usr (only for directories that are symlinks under the root).
    private func usrMergeAliases(of path: String) -> [String] {
        var aliases: [String] = []
        for top in ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"] {
            var st = stat()
            guard lstat(LiveFS.join(root, top), &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { continue }
            if path.hasPrefix(top + "/") { aliases.append("/usr" + path) }
            if path.hasPrefix("/usr" + top + "/") { aliases.append(String(path.dropFirst(4))) }
        }
        return aliases
    }

    // MARK: rpm

    /// The `rpm` executable on the PATH, if any.
    static var rpmExecutable: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") where access("\(dir)/rpm", X_OK) == 0 { return "\(dir)/rpm" }
        return nil
    }

    private func rpmQuery(_ arguments: [String]) throws(PackageDatabaseError) -> [InstalledPackage] {
        guard let rpm = Self.rpmExecutable else {
            throw PackageDatabaseError(source: "rpm", message: "rpm database present but no rpm executable on PATH")
        }
        let argv = ["--root", root.isEmpty ? "/" : root,
                    "--qf", "%{NAME}\t%|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}\t%{ARCH}\n"] + arguments
        let timeout = Duration.seconds(60)
        let run: ChildProcess.Result
        do { run = try ChildProcess.run(rpm, argv, timeout: timeout) } catch {
            throw PackageDatabaseError(source: rpm, message: error.reason)
        }
        let text = run.outputText
        var packages: [InstalledPackage] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }   // "package x is not installed" lines
            packages.append(InstalledPackage(name: String(fields[0]), architecture: fields[2] == "(none)" ? "" : String(fields[2]),
                                             version: String(fields[1])))
        }
        // rpm exits 1 for "not installed" / "not owned"; other failures print nothing parseable.
        if run.timedOut || (run.status != 0 && packages.isEmpty && run.status != 1) {
            throw PackageDatabaseError(source: rpm, message: "\(arguments.joined(separator: " ")) "
                                       + run.failureDescription(timeout: timeout))
        }
        return packages
    }
}
