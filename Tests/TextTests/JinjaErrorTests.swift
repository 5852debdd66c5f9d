// Template errors name file:line:column; raise_exception surfaces its message unchanged.

import Testing
@testable import Text

private func parseError(_ source: String, name: String = "chat_template") -> TextError? {
    do {
        _ = try ChatTemplate(source: source, name: name)
        return nil
    } catch {
        return error
    }
}

private func renderError(_ source: String) -> TextError? {
    do {
        _ = try ChatTemplate(source: source).render(messages: .array([]), addGenerationPrompt: false)
        return nil
    } catch {
        return error
    }
}

@Test func syntaxErrorNamesLineAndColumn() throws {
    let e = try #require(parseError("line one\n{% if true %}\n{{ 1 + }}\n{% endif %}", name: "tpl.jinja"))
    #expect(e.code == .template)
    #expect(e.message == "tpl.jinja:3:8: unexpected 'end of print statement'")
}

@Test func unclosedBlockNamesWhatIsMissing() throws {
    let e = try #require(parseError("{% for x in y %}\nbody"))
    #expect(e.message == "chat_template:2:5: unexpected end of template, expected 'else' or 'endfor'")
}

@Test func unknownTagAndUnterminatedTag() throws {
    #expect(parseError("ok\n  {% frobnicate %}")?.message == "chat_template:2:6: unknown tag 'frobnicate'")
    #expect(parseError("{{ 'a' ")?.message == "chat_template:1:8: unexpected end of template, expected '}}'")
    #expect(parseError("{# never closed")?.message == "chat_template:1:1: missing end of comment tag")
}

@Test func unknownFilterNamesFilterAndPosition() throws {
    let e = try #require(parseError("hello\n  {{ x | foo }}"))
    #expect(e.message == "chat_template:2:10: unknown filter 'foo'")
    #expect(parseError("{{ x is frob }}")?.message == "chat_template:1:9: unknown test 'frob'")
}

@Test func unknownFilterInsideIfFailsOnlyWhenTaken() throws {
    let source = "{% if add_generation_prompt %}{{ 'x' | nope }}{% endif %}done"
    let template = try ChatTemplate(source: source)
    #expect(try template.render(messages: .array([]), addGenerationPrompt: false) == "done")
    #expect(throws: TextError.self) { try template.render(messages: .array([]), addGenerationPrompt: true) }
}

@Test func raiseExceptionMessageSurfaces() throws {
    let e = try #require(renderError("a\n{{ raise_exception('Conversation roles must alternate user/assistant') }}"))
    #expect(e.code == .template)
    #expect(e.message == "Conversation roles must alternate user/assistant")
    #expect(e.hint == "raised by raise_exception at chat_template:2:19")
}

@Test func undefinedAttributeIsARuntimeErrorWithPosition() throws {
    #expect(renderError("{{ x.y }}")?.message == "chat_template:1:5: 'x' is undefined")
    #expect(renderError("{% set d = {} %}{{ d.a.b }}")?.message == "chat_template:1:23: 'dict object' has no attribute 'a'")
    #expect(renderError("{{ 'a' + 1 }}")?.message == "chat_template:1:8: can only concatenate str (not \"int\") to str")
}

@Test func immutableSandboxRefusesMutation() throws {
    let e = try #require(renderError("{% set l = [] %}{{ l.append(1) }}"))
    #expect(e.message == "chat_template:1:28: access to attribute 'append' of 'list' object is unsafe.")
    #expect(renderError("{% set ns = namespace() %}{% set ns._x = 1 %}")?.message.contains("underscore-prefixed") == true)
}

@Test func breakOutsideLoopIsASyntaxError() throws {
    #expect(parseError("{% break %}")?.message == "chat_template:1:4: 'break' outside of a loop")
}
