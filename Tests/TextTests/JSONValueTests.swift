// JSONValue: ordered objects, Python-compatible numbers and escapes, precise error positions, speed.

import Testing
@testable import Text

@Test func objectsKeepInsertionOrder() throws {
    let v = try JSONValue.parse(#"{"z": 1, "a": {"y": true, "b": null}, "m": [1.5, "x"]}"#)
    #expect(v.objectValue?.keys == ["z", "a", "m"])
    #expect(v["a"]?.objectValue?.keys == ["y", "b"])
    #expect(v.serialized() == #"{"z":1,"a":{"y":true,"b":null},"m":[1.5,"x"]}"#)
}

@Test func duplicateKeysKeepFirstPositionAndLastValue() throws {
    let v = try JSONValue.parse(#"{"a": 1, "b": 2, "a": 3}"#)
    #expect(v.objectValue?.keys == ["a", "b"])
    #expect(v["a"] == .int(3))
}

@Test func numbersFollowPython() throws {
    #expect(try JSONValue.parse("42") == .int(42))
    #expect(try JSONValue.parse("-0") == .int(0))
    #expect(try JSONValue.parse("1.0") == .double(1.0))
    #expect(try JSONValue.parse("1e2") == .double(100))
    #expect(try JSONValue.parse("123456789012345678901234567890") == .double(1.2345678901234568e29))
    #expect(JSONValue.double(1e-5).serialized() == "1e-05")
    #expect(JSONValue.double(1e16).serialized() == "1e+16")
    #expect(JSONValue.double(0.1).serialized() == "0.1")
}

@Test func stringEscapesAndUnicode() throws {
    let v = try JSONValue.parse(#""a\"b\\c\/\n\t\u00e9\ud83d\ude00 日本""#)
    #expect(v == .string("a\"b\\c/\n\té😀 日本"))
    #expect(v.serialized() == #""a\"b\\c/\n\té😀 日本""#)
    #expect(JSONValue.string("\u{01}\u{7f}").serialized() == "\"\\u0001\u{7f}\"")
    #expect(try JSONValue.parse(#""\ud800""#) == .string("\u{FFFD}"))
}

@Test func errorsNameLineAndColumn() throws {
    #expect(throws: TextError(.unreadable, "invalid JSON at line 3, column 10: expected ',' or '}'")) {
        try JSONValue.parse("{\n  \"a\": 1,\n  \"é\": 2 3}")
    }
    #expect(throws: TextError(.unreadable, "invalid JSON at line 1, column 4: unexpected end of input")) {
        try JSONValue.parse("[1,")
    }
    #expect(throws: TextError(.unreadable, "invalid JSON at line 1, column 6: unexpected data after the JSON value")) {
        try JSONValue.parse("true x")
    }
    #expect(throws: TextError(.unreadable, "invalid JSON at line 1, column 2: unexpected character ','")) {
        try JSONValue.parse("[,]")
    }
    #expect(throws: TextError(.unreadable, "invalid JSON at line 1, column 3: invalid UTF-8")) {
        try JSONValue.parse([0x22, 0x61, 0xFF, 0x22])
    }
}

@Test func fileErrorsNameTheFileAndByteOffset() throws {
    #expect(throws: TextError(.unreadable, "t.json: invalid JSON at byte offset 11 (line 2, column 3): expected a string key")) {
        try JSONValue.parse(Array("{\"a\": 1,\n  }".utf8), file: "t.json")
    }
    #expect(throws: TextError(.unreadable, "t.json: invalid JSON at byte offset 8 (line 1, column 8): invalid UTF-8")) {
        try JSONValue.parse(Array("[\"é\", \"".utf8) + [0xC3, 0x28, 0x22, 0x5D], file: "t.json")
    }
    #expect(throws: TextError(.unreadable, "t.json: invalid JSON at byte offset 1 (line 1, column 2): invalid UTF-8")) {
        try JSONValue.parse([0x5B, 0xFF, 0x5D], file: "t.json")
    }
    #expect(throws: TextError(.unreadable, "invalid JSON at line 1, column 2: unexpected character 'é'")) {
        try JSONValue.parse("[é]")
    }
}

@Test func integersAreReadExactlyAndOverflowToDouble() throws {
    #expect(try JSONValue.parse("[9223372036854775807, -9223372036854775808, 9223372036854775808, 1e30, -0.5]")
        == .array([.int(.max), .int(.min), .double(9223372036854775808), .double(1e30), .double(-0.5)]))
    #expect(throws: TextError.self) { try JSONValue.parse("01") }
    #expect(throws: TextError.self) { try JSONValue.parse("-") }
}

@Test func largeObjectsFindKeysAndMergeDuplicates() throws {
    let n = 1000
    let text = "{" + (0..<n).map { #""k\#($0)é": \#($0)"# }.joined(separator: ",") + #","k7é": -7}"#
    guard case .object(var o) = try JSONValue.parse(text) else { Issue.record("not an object"); return }
    #expect(o.count == n && o.keys[7] == "k7é")
    #expect(o["k7é"] == .int(-7) && o["k999é"] == .int(999) && o["k1000é"] == nil)
    o["k3é"] = nil
    #expect(o.count == n - 1 && o["k4é"] == .int(4) && o["k3é"] == nil && Array(o)[3].key == "k4é")
    // Keys are told apart by their bytes, as Python does: NFC and NFD spellings are two keys.
    let nfcNFD = try JSONValue.parse("{\"\u{E9}\": 1, \"e\u{301}\": 2}")
    #expect(nfcNFD.objectValue?.count == 2 && nfcNFD["\u{E9}"] == .int(1))
}

@Test func deepNestingIsRejectedNotCrashing() {
    let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
    #expect(throws: TextError.self) { try JSONValue.parse(deep) }
}

@Test func objectMutationKeepsOrder() {
    var o = JSONObject([("a", .int(1)), ("b", .int(2))])
    o["c"] = .int(3)
    o["a"] = .int(9)
    o["b"] = nil
    #expect(o.keys == ["a", "c"])
    #expect(JSONValue.object(o).serialized() == #"{"a":9,"c":3}"#)
}

@Test func parsesAFewMegabytesQuickly() throws {
    var text = "["
    for i in 0..<40_000 {
        if i > 0 { text += "," }
        text += #"{"id": \#(i), "name": "item \#(i) é", "score": \#(Double(i) / 7), "tags": ["a", "b"], "ok": true}"#
    }
    text += "]"
    #expect(text.utf8.count > 3_000_000)
    let clock = ContinuousClock()
    var parsed: JSONValue = .null
    let elapsed = try clock.measure { parsed = try JSONValue.parse(Array(text.utf8)) }
    #expect(parsed.arrayValue?.count == 40_000)
    #expect(try JSONValue.parse(parsed.serialized()) == parsed)
    // Generous for debug builds on a shared machine.
    #expect(elapsed < .seconds(10))
}
