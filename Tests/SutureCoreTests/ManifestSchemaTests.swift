import Foundation
import SutureCore
import SutureTestSupport
import Testing
import Yams

/// `schema/manifest.schema.json` and the loader describe the same model.
@Suite struct ManifestSchemaTests {
    static var schemaURL: URL { TestSupport.packageRoot.appendingPathComponent("schema/manifest.schema.json") }

    private static func definitions() throws -> [String: [String: Any]] {
        let data = try Data(contentsOf: schemaURL)
        let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(schema["$defs"] as? [String: [String: Any]])
    }

    @Test func schemaPropertiesEqualTheLoadersAcceptedKeys() throws {
        let defs = try Self.definitions()
        for (name, keys) in ManifestKeys.bySchemaDefinition {
            let properties = try #require(defs[name]?["properties"] as? [String: Any], "no $defs/\(name)")
            #expect(Set(properties.keys) == Set(keys), "$defs/\(name)")
            #expect(defs[name]?["additionalProperties"] as? Bool == false, "$defs/\(name) must be closed")
        }
        // Every object with fixed properties in the schema is known to the loader.
        let withProperties = defs.filter { $0.value["properties"] != nil }.map(\.key)
        #expect(Set(withProperties) == Set(ManifestKeys.bySchemaDefinition.keys))
        // Enumerations agree with the model.
        let patch = try #require(defs["Patch"]?["properties"] as? [String: [String: Any]])
        #expect(patch["state"]?["enum"] as? [String] == DesiredPatchState.allCases.map(\.rawValue))
        #expect(patch["onStall"]?["enum"] as? [String] == StallPolicy.allCases.map(\.rawValue))
        let root = try #require(defs["PatchSet"]?["properties"] as? [String: [String: Any]])
        #expect(root["apiVersion"]?["const"] as? String == ManifestKeys.apiVersion)
        #expect(root["kind"]?["const"] as? String == ManifestKeys.kind)
    }

    /// Converts every YAML document of `files` to JSON (via Yams, YAML 1.1 typing as the loader sees it)
    /// and runs python3 `jsonschema` (Draft 2020-12) on them; returns the names of invalid documents.
    private static func schemaRejects(_ files: [URL]) throws -> [String] {
        let directory = try TestSupport.temporaryDirectory("suture-schema")
        defer { try? FileManager.default.removeItem(at: directory) }
        var names: [String] = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for (index, document) in try Yams.load_all(yaml: text).enumerated() {
                let name = "\(file.lastPathComponent)#\(index)"
                let json = try JSONSerialization.data(withJSONObject: jsonSafe(document), options: [.sortedKeys])
                try json.write(to: directory.appendingPathComponent(name + ".json"))
                names.append(name)
            }
        }
        let script = """
        import json, sys, glob, os, jsonschema
        schema = json.load(open(sys.argv[1]))
        validator = jsonschema.Draft202012Validator(schema)
        for path in sorted(glob.glob(os.path.join(sys.argv[2], '*.json'))):
            errors = list(validator.iter_errors(json.load(open(path))))
            if errors:
                print(os.path.basename(path)[:-5] + '\\t' + errors[0].message)
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, schemaURL.path, directory.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "python3 jsonschema failed (run scripts/setup)")
        #expect(!names.isEmpty)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    private static func jsonSafe(_ value: Any) -> Any {
        switch value {
        case let dictionary as [AnyHashable: Any]:
            var out: [String: Any] = [:]
            for (key, item) in dictionary { out["\(key)"] = jsonSafe(item) }
            return out
        case let array as [Any]: return array.map(jsonSafe)
        case is NSNull, is String, is Bool, is Int, is Double: return value
        default: return "\(value)"
        }
    }

    @Test func everyExampleManifestIsValidAgainstTheSchema() throws {
        let names = try FileManager.default.subpathsOfDirectory(atPath: ManifestFixtures.examples.path)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        #expect(!names.isEmpty)
        let rejected = try Self.schemaRejects(names.map { ManifestFixtures.examples.appendingPathComponent($0) })
        #expect(rejected.isEmpty, "\(rejected)")
    }

    @Test(arguments: ["version-float-1.10", "version-int", "state-on", "state-true", "unknown-key-patch",
                      "unknown-key-toplevel", "target-two-kinds", "target-package-without-version",
                      "target-empty", "missing-state", "missing-patches", "pin-short",
                      "type-label-integer", "unknown-kind", "unknown-apiversion", "name-with-space"])
    func schemaAlsoRejectsStructurallyBadManifests(_ name: String) throws {
        let rejected = try Self.schemaRejects([ManifestFixtures.badManifests.appendingPathComponent(name + ".yaml")])
        #expect(rejected.count == 1, "the schema accepts \(name).yaml, which the loader refuses")
    }
}
