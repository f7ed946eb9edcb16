import Foundation
import Testing
import SutureTestSupport
@testable import SutureCore

@Suite struct PackageDatabaseTests {
    static let status = """
    Package: libssl3
    Status: install ok installed
    Priority: optional
    Architecture: amd64
    Multi-Arch: same
    Version: 3.0.15-1~deb12u1
    Description: Secure Sockets Layer toolkit
     This package is part of the OpenSSL project.
     .
     Version: 9.9 in a continuation line is not a field

    Package: libssl3
    Status: install ok installed
    Architecture: i386
    Multi-Arch: same
    Version: 3.0.15-1~deb12u1

    Package: demo
    Status: install ok installed
    Architecture: amd64
    Version: 1:2.0-3

    Package: removed-pkg
    Status: deinstall ok config-files
    Architecture: amd64
    Version: 1.0

    Package: half
    Status: install reinstreq half-installed
    Architecture: amd64
    Version: 0.1

    Package: unpacked-pkg
    Status: install ok unpacked
    Architecture: all
    Version: 5
    """

    func makeRoot() throws -> URL {
        let root = try TestSupport.temporaryDirectory("dpkg")
        let info = root.appendingPathComponent("var/lib/dpkg/info")
        try FileManager.default.createDirectory(at: info, withIntermediateDirectories: true)
        try Self.status.write(to: root.appendingPathComponent("var/lib/dpkg/status"), atomically: true, encoding: .utf8)
        try "/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu/libssl.so.3\n"
            .write(to: info.appendingPathComponent("libssl3:amd64.list"), atomically: true, encoding: .utf8)
        try "/.\n/usr\n/usr/lib\n/usr/lib/i386-linux-gnu/libssl.so.3\n"
            .write(to: info.appendingPathComponent("libssl3:i386.list"), atomically: true, encoding: .utf8)
        try "/.\n/usr\n/usr/sbin\n/usr/sbin/demo\n/sbin/demo-legacy\n"
            .write(to: info.appendingPathComponent("demo.list"), atomically: true, encoding: .utf8)
        try "/.\n/etc/removed.conf\n".write(to: info.appendingPathComponent("removed-pkg.list"), atomically: true, encoding: .utf8)
        // Merged /usr: /sbin -> usr/sbin.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("usr/sbin"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("sbin").path, withDestinationPath: "usr/sbin")
        return root
    }

    @Test func parsesStatusParagraphs() {
        let packages = PackageDatabase.parseDpkgStatus(Self.status)
        #expect(packages == [
            InstalledPackage(name: "libssl3", architecture: "amd64", version: "3.0.15-1~deb12u1"),
            InstalledPackage(name: "libssl3", architecture: "i386", version: "3.0.15-1~deb12u1"),
            InstalledPackage(name: "demo", architecture: "amd64", version: "1:2.0-3"),
            InstalledPackage(name: "unpacked-pkg", architecture: "all", version: "5"),
        ])
    }

    @Test func installedVersions() throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let db = PackageDatabase(root: root.path)
        #expect(db.backend == .dpkg)
        #expect(try db.installed("libssl3").map(\.architecture) == ["amd64", "i386"])
        #expect(try db.installed("demo") == [InstalledPackage(name: "demo", architecture: "amd64", version: "1:2.0-3")])
        #expect(try db.installed("removed-pkg").isEmpty)
        #expect(try db.installed("half").isEmpty)
        #expect(try db.installed("nonexistent").isEmpty)
        let many = try db.installed(["demo", "nonexistent"])
        #expect(many["nonexistent"] == [])
        #expect(many["demo"]?.count == 1)
    }

    @Test func ownersIncludingMultiArchAndMergedUsr() throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let db = PackageDatabase(root: root.path)
        #expect(try db.owners(of: "/usr/lib/x86_64-linux-gnu/libssl.so.3")
                == [InstalledPackage(name: "libssl3", architecture: "amd64", version: "3.0.15-1~deb12u1")])
        #expect(try db.owners(of: "/usr/lib/i386-linux-gnu/libssl.so.3").map(\.architecture) == ["i386"])
        #expect(try db.owners(of: "/usr/sbin/demo").map(\.name) == ["demo"])
        // Listed as /sbin/demo-legacy, asked as /usr/sbin/demo-legacy (and the other way round).
        #expect(try db.owners(of: "/usr/sbin/demo-legacy").map(\.name) == ["demo"])
        #expect(try db.owners(of: "/sbin/demo").map(\.name) == ["demo"])
        // A directory is shared.
        #expect(try db.owners(of: "/usr/lib").map(\.description) == ["libssl3:amd64 3.0.15-1~deb12u1", "libssl3:i386 3.0.15-1~deb12u1"])
        // A removed package (config-files) owns nothing.
        #expect(try db.owners(of: "/etc/removed.conf").isEmpty)
        #expect(try db.owners(of: "/nowhere").isEmpty)
    }

    @Test func noDatabase() throws {
        let root = try TestSupport.temporaryDirectory("nodb")
        defer { try? FileManager.default.removeItem(at: root) }
        let db = PackageDatabase(root: root.path)
        #expect(db.backend == .none)
        #expect(try db.installed("x").isEmpty)
        #expect(try db.owners(of: "/bin/ls").isEmpty)
    }

    @Test func unreadableStatusIsAnError() throws {
        let root = try TestSupport.temporaryDirectory("baddb")
        defer { try? FileManager.default.removeItem(at: root) }
        // A directory where the status file should be: exists, but cannot be read as a file.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("var/lib/dpkg/status"), withIntermediateDirectories: true)
        #expect(throws: PackageDatabaseError.self) { try PackageDatabase(root: root.path).installed("x") }
    }

    @Test func realDpkgDatabaseOwnerOfLs() throws {
        try #require(FileManager.default.fileExists(atPath: "/var/lib/dpkg/status"))
        let expected = try GCC.run("/usr/bin/dpkg-query", ["-S", "/bin/ls"])   // "coreutils: /bin/ls"
        let expectedName = String(expected.split(separator: ":").first!)
        let db = PackageDatabase()
        let owners = try db.owners(of: "/bin/ls")
        #expect(owners.map(\.name) == [expectedName])
        // /usr/bin/ls is the same file under merged /usr.
        #expect(try db.owners(of: "/usr/bin/ls").map(\.name) == [expectedName])
        let version = try GCC.run("/usr/bin/dpkg-query", ["-W", "-f=${Version}", expectedName])
        #expect(try db.installed(expectedName).map(\.version) == [version])
        // A Multi-Arch: same library.
        let libc = try db.owners(of: "/lib/x86_64-linux-gnu/libc.so.6")
        #expect(libc.map(\.name) == ["libc6"])
        #expect(libc.first?.architecture == "amd64")
    }
}
