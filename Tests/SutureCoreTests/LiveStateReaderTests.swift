import Foundation
import Testing
import SutureELF
import SutureTestSupport
@testable import SutureCore

@Suite struct LiveStateReaderTests {
    @Test func assemblesEverythingFromARecordedTree() throws {
        let fixture = try KernelFixture("6.1", "transition-held")
        defer { fixture.remove() }
        let files = [
            "proc/sys/kernel/hostname": "web-01\n",
            "proc/sys/kernel/random/boot_id": "0f6b5a3c-1111-4222-8333-944455556666\n",
            "proc/sys/kernel/osrelease": "6.1.0-57-amd64\n",
            "etc/suture/labels": "role=web\n",
            "var/lib/dpkg/status": "Package: demo\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n",
        ]
        for (path, text) in files {
            let url = fixture.root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let live = try LiveStateReader(root: fixture.path)
            .read(interest: LiveInterest(targets: [TargetFile(path: "/usr/sbin/demo")], packages: ["demo", "absent"]))
        #expect(live.hostname == "web-01")
        #expect(live.bootID == "0f6b5a3c-1111-4222-8333-944455556666")
        #expect(live.kernelRelease == "6.1.0-57-amd64")
        #expect(live.labels == ["role": "web"])
        #expect(live.kernel.patches.map(\.name) == ["livepatch_kvmlp_busy"])
        #expect(live.kernel.blockers.map(\.pid) == [702])
        #expect(live.packages == ["demo": ["1.0-1"]])
        #expect(live.processes.isEmpty)   // the recorded tree has no maps files
        #expect(live.store.isEmpty)
        #expect(live.unreadable.isEmpty)
    }

    @Test func badLabelsFileIsAnError() throws {
        let fixture = try KernelFixture("6.1", "none")
        defer { fixture.remove() }
        let labels = fixture.root.appendingPathComponent("etc/suture/labels")
        try FileManager.default.createDirectory(at: labels.deletingLastPathComponent(), withIntermediateDirectories: true)
        try "role web\n".write(to: labels, atomically: true, encoding: .utf8)
        #expect(throws: LabelsFileError.self) { try LiveStateReader(root: fixture.path).read(interest: LiveInterest()) }
    }

    @Test func interestFromDesiredStateAndStore() {
        func bundle(_ uuid: String, kind: PatchKind, package: String, entities: [BundleEntity]) -> ResolvedBundle {
            ResolvedBundle(metadata: BundleMetadata(name: "p-\(uuid)", version: "1", release: "1", uuid: uuid, kind: kind,
                                                    description: "", target: BundleTarget(package: package, version: "1", arch: "x86_64"),
                                                    entities: entities, patches: []),
                           path: "/b/\(uuid)", digest: "d")
        }
        let user = bundle("u1", kind: .user, package: "demo", entities: [
            BundleEntity(targetPath: "/usr/sbin/demo", targetBuildID: "ABCD", payload: "p.o", payloadSHA256: "x"),
            BundleEntity(targetPath: "/usr/lib/libdemo.so.1", targetBuildID: "", payload: "q.o", payloadSHA256: "y"),
        ])
        let kernel = bundle("k1", kind: .kernel, package: "kernel", entities: [
            BundleEntity(targetPath: "vmlinux", targetBuildID: "", payload: "lp.ko", payloadSHA256: "z"),
        ])
        let stored = bundle("u2", kind: .user, package: "other", entities: [
            BundleEntity(targetPath: "/usr/bin/other", targetBuildID: "ee", payload: "o.o", payloadSHA256: "w"),
        ])
        let location = SourceLocation(file: "m.yaml", line: 1, column: 1)
        let desired = DesiredState(patches: [
            DesiredPatch(name: "p-u1", state: .activated, target: .package(name: "demo", version: "1"), bundle: user,
                         patchSet: "s", location: location),
            DesiredPatch(name: "p-k1", state: .activated, target: .kernel(release: "6.1"), bundle: kernel,
                         patchSet: "s", location: location),
        ])
        let interest = LiveInterest(desired: desired, store: [InstalledBundle(bundle: stored)])
        #expect(interest.targets == [
            TargetFile(path: "/usr/bin/other", buildID: "ee"),
            TargetFile(path: "/usr/lib/libdemo.so.1", buildID: nil),
            TargetFile(path: "/usr/sbin/demo", buildID: "abcd"),
        ])
        #expect(interest.packages == ["demo", "other"])
    }

    @Test func realHostWithARunningTarget() throws {
        let dir = try TestSupport.temporaryDirectory("live")
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary = try GCC.compile("#include <unistd.h>\n#include <stdio.h>\nint main(void){puts(\"up\");fflush(stdout);for(;;)pause();}\n",
                                     name: "livetarget", in: dir)
        let id = try #require(try ELFFile(path: binary.path).buildID())
        let process = try TargetProcess(binary)
        defer { process.stop() }
        _ = try process.readLine()
        let live = try LiveStateReader().read(interest: LiveInterest(targets: [TargetFile(path: binary.path, buildID: id)],
                                                                     packages: ["coreutils"]), store: [])
        // Other processes on the machine may carry Suture markers; only ours maps the target.
        let mapping = live.processes.filter { !$0.objects.isEmpty }
        #expect(mapping.map(\.pid) == [process.pid])
        #expect(mapping.first?.objects.first?.buildID == id)
        #expect(live.processes.allSatisfy { !$0.objects.isEmpty || !$0.patches.isEmpty })
        #expect(live.packages["coreutils"]?.count == 1)
        #expect(!live.hostname.isEmpty)
        #expect(!live.kernelRelease.isEmpty)
    }
}
