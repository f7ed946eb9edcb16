import Foundation
import SutureCore
import SutureTestSupport
import Testing

@Suite struct SutureConfigTests {
    @Test func missingFilesMeanDefaults() throws {
        let root = try ManifestFixtures.tree([:])
        defer { try? FileManager.default.removeItem(at: root) }
        let (config, warnings) = try SutureConfig.load(root: root.path)
        #expect(config == SutureConfig())
        #expect(warnings.isEmpty)
        #expect(config.manifestPaths(root: root.path) == [root.path + "/etc/suture/manifests.d"])
        #expect(config.manifestPaths(root: "/") == ["/etc/suture/manifests.d"])
    }

    @Test func readsEveryKeyAndMergesLabelsWithTheLabelsFileWinning() throws {
        let root = try ManifestFixtures.tree([
            "etc/suture/suture.yaml": """
            manifests: [/srv/gitops/manifests, local]
            requirePins: true
            labels: {role: web, dc: fra1}
            onStall: fail
            allowPartial: true
            busyDeadlineSeconds: 2.5
            lockTimeoutSeconds: 10
            """,
            "etc/suture/labels": "# written by provisioning\n\nrole = canary\ntier=1\n",
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let (config, _) = try SutureConfig.load(root: root.path)
        #expect(config.manifests == ["/srv/gitops/manifests", "/etc/suture/local"])
        #expect(config.requirePins)
        #expect(config.labels == ["role": "canary", "dc": "fra1", "tier": "1"])
        #expect(config.onStall == .fail)
        #expect(config.allowPartial)
        #expect(config.busyDeadlineSeconds == 2.5)
        #expect(config.lockTimeoutSeconds == 10)
        #expect(config.manifestPaths(root: root.path + "/") == [root.path + "/srv/gitops/manifests",
                                                                root.path + "/etc/suture/local"])
    }

    @Test func reportsEveryErrorWithItsPosition() throws {
        let root = try ManifestFixtures.tree([
            "etc/suture/suture.yaml": """
            manifest: [/srv]
            requirePins: yes
            onStall: rollback
            lockTimeoutSeconds: -1
            labels: {tier: 1}
            """,
            "etc/suture/labels": "role=web\njust-a-word\nrole=db\n",
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.path + "/etc/suture/suture.yaml"
        let labels = root.path + "/etc/suture/labels"
        do {
            _ = try SutureConfig.load(root: root.path)
            Issue.record("expected an error")
        } catch {
            let lines = error.diagnostics.map { String($0.description.split(separator: "\n").first ?? "") }
            #expect(lines == [
                "\(labels):2:1: error: expected key=value",
                "\(labels):3:1: error: label 'role' is set twice",
                "\(file):1:1: error: unknown key 'manifest' in the config file; did you mean 'manifests'?",
                "\(file):2:14: error: `yes` for 'requirePins' is a YAML 1.1 boolean that YAML 1.2 tools read as "
                    + "a string; write true or false",
                "\(file):3:10: error: invalid onStall 'rollback'; expected one of revert, wait, fail",
                "\(file):4:21: error: 'lockTimeoutSeconds' must be a non-negative number of seconds written in "
                    + "decimal, found `-1`",
                "\(file):5:16: error: expected a string for label 'tier', found `1`, which YAML reads as an "
                    + "integer; quote it: \"1\"",
            ])
        }
    }

    @Test func syntaxErrorsInTheConfigArePositioned() throws {
        let root = try ManifestFixtures.tree(["etc/suture/suture.yaml": "labels: {role: web\n"])
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(throws: DiagnosticError.self) { try SutureConfig.load(root: root.path) }
        do {
            _ = try SutureConfig.load(root: root.path)
        } catch {
            #expect(error.diagnostics.first?.location?.file == root.path + "/etc/suture/suture.yaml")
            #expect(error.diagnostics.first?.message.hasPrefix("YAML syntax error") == true)
        }
    }
}
