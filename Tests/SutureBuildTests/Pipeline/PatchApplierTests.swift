import Foundation
import SutureBuild
import SutureTestSupport
import Testing

@Suite struct PatchApplierTests {
    func tree() throws -> URL {
        let root = try TestSupport.temporaryDirectory("suture-patch")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try "int f(int x)\n{\n    return x + 1;\n}\n".write(to: root.appendingPathComponent("src/f.c"), atomically: true, encoding: .utf8)
        return root
    }

    let fix = """
        --- a/src/f.c
        +++ b/src/f.c
        @@ -1,4 +1,4 @@
         int f(int x)
         {
        -    return x + 1;
        +    return x + 2;
         }

        """

    @Test func appliesInOrderAndNamesTouchedFiles() throws {
        let root = try tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let patch = root.appendingPathComponent("fix.patch")
        try fix.write(to: patch, atomically: true, encoding: .utf8)
        let touched = try PatchApplier.apply([patch], to: root)
        #expect(touched == [["src/f.c"]])
        #expect(try String(contentsOf: root.appendingPathComponent("src/f.c"), encoding: .utf8).contains("x + 2"))
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("src/f.c.orig").path))
    }

    @Test func aHunkThatDoesNotApplyIsOneErrorNamingFileAndHunkAndChangesNothing() throws {
        let root = try tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let patch = root.appendingPathComponent("bad.patch")
        try fix.replacingOccurrences(of: "-    return x + 1;", with: "-    return x - 1;")
            .write(to: patch, atomically: true, encoding: .utf8)
        let before = try String(contentsOf: root.appendingPathComponent("src/f.c"), encoding: .utf8)
        let error = #expect(throws: BuildError.self) { try PatchApplier.apply([patch], to: root) }
        let message = error?.message ?? ""
        #expect(message.contains("bad.patch does not apply"), "\(message)")
        #expect(message.contains("src/f.c: Hunk #1 FAILED at 1"), "\(message)")
        #expect(try String(contentsOf: root.appendingPathComponent("src/f.c"), encoding: .utf8) == before)
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("src/f.c.rej").path))
    }

    @Test func anAlreadyAppliedPatchIsRefusedNotReverted() throws {
        let root = try tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let patch = root.appendingPathComponent("fix.patch")
        try fix.write(to: patch, atomically: true, encoding: .utf8)
        let error = #expect(throws: BuildError.self) { try PatchApplier.apply([patch, patch], to: root) }
        #expect(error?.message.contains("already applied") == true, "\(error?.message ?? "")")
        #expect(try String(contentsOf: root.appendingPathComponent("src/f.c"), encoding: .utf8).contains("x + 2"))
    }
}
