import Foundation
import SutureBuild
import SutureTestSupport
import Testing

@Suite struct BuildCacheTests {
    @Test func treeDigestFollowsContentModeAndNamesButNotGit() throws {
        let root = try TestSupport.temporaryDirectory("suture-digest")
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("a.c")
        try "int a;\n".write(to: file, atomically: true, encoding: .utf8)
        let d1 = try BuildCache.treeDigest(root)
        #expect(try BuildCache.treeDigest(root) == d1)
        try FileManager.default.createDirectory(at: root.appendingPathComponent(".git"), withIntermediateDirectories: true)
        try "ref\n".write(to: root.appendingPathComponent(".git/HEAD"), atomically: true, encoding: .utf8)
        #expect(try BuildCache.treeDigest(root) == d1)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file.path)
        let d2 = try BuildCache.treeDigest(root)
        #expect(d2 != d1)
        try "int b;\n".write(to: file, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file.path)
        #expect(try BuildCache.treeDigest(root) != d2)
        #expect(throws: BuildError.self) { try BuildCache.treeDigest(root.appendingPathComponent("missing")) }
    }

    @Test func keyFollowsCommandCompilersAndFlagsEnvironment() {
        let wrappers = ["gcc": "/usr/bin/gcc"]
        let k = BuildCache.key(treeDigest: "t", buildCommand: "make", wrappers: wrappers, environment: [:])
        #expect(k == BuildCache.key(treeDigest: "t", buildCommand: "make", wrappers: wrappers, environment: ["HOME": "/x"]))
        #expect(k != BuildCache.key(treeDigest: "t", buildCommand: "make -k", wrappers: wrappers, environment: [:]))
        #expect(k != BuildCache.key(treeDigest: "u", buildCommand: "make", wrappers: wrappers, environment: [:]))
        #expect(k != BuildCache.key(treeDigest: "t", buildCommand: "make", wrappers: wrappers, environment: ["CFLAGS": "-O0"]))
        #expect(k != BuildCache.key(treeDigest: "t", buildCommand: "make", wrappers: ["gcc": "/usr/bin/clang"], environment: [:]))
    }
}
