// Public entry point: parse a chat template once, render conversations the way transformers' apply_chat_template does.

/// A parsed Jinja chat template (tokenizer_config.json `chat_template` or `chat_template.jinja`).
///
/// Rendering follows transformers' environment: `ImmutableSandboxedEnvironment(trim_blocks=True,
/// lstrip_blocks=True)` with loop controls, `{% generation %}`, its own `tojson`, and the globals
/// `raise_exception`, `strftime_now`, `namespace`, `dict`.
public struct ChatTemplate: Sendable {
    public let name: String
    let body: [Node]

    /// Parses `source`; a syntax error is `TextError(.template, "<name>:LINE:COL: what")`.
    public init(source: String, name: String = "chat_template") throws(TextError) {
        self.name = name
        do {
            var lexer = Lexer(source)
            var parser = Parser(tokens: try lexer.tokenize())
            body = try parser.parseTemplate()
        } catch {
            throw ChatTemplate.textError(error, name: name, hint: "the chat template is not valid Jinja")
        }
    }

    /// Renders with transformers' conventions. `messages` / `tools` are JSON as received.
    ///
    /// Differences from `tokenizer.apply_chat_template`, on purpose: messages are rendered exactly as given
    /// (transformers 5.x first drops keys whose value is null and aliases reasoning fields; moerun keeps what the
    /// client sent), and `tools == nil` binds `tools` to None, as transformers passes `tools=None`.
    /// `specialTokens` (bos_token, eos_token, ...) and then `extra` become template variables; the fixed names
    /// `messages`, `tools`, `documents` and `add_generation_prompt` take precedence over both.
    /// A runtime error names line and column; `raise_exception(msg)` becomes `TextError(.template, msg)`.
    public func render(messages: JSONValue, tools: JSONValue? = nil, addGenerationPrompt: Bool,
                       specialTokens: [String: String] = [:],
                       extra: [String: JSONValue] = [:]) throws(TextError) -> String {
        var vars: [String: Value] = [:]
        vars.reserveCapacity(specialTokens.count + extra.count + 4)
        for (k, v) in specialTokens { vars[k] = .string(v) }
        for (k, v) in extra { vars[k] = Value(v) }
        vars["messages"] = Value(messages)
        vars["tools"] = tools.map(Value.init) ?? .none
        vars["documents"] = Value.none
        vars["add_generation_prompt"] = .bool(addGenerationPrompt)
        var interpreter = Interpreter(templateName: name)
        var out = ""
        do {
            _ = try interpreter.exec(body, Scope(parent: nil, vars: vars), &out)
        } catch {
            throw ChatTemplate.textError(error, name: name, hint: "the chat template failed while rendering")
        }
        return out
    }

    static func textError(_ e: JinjaError, name: String, hint: String) -> TextError {
        let at = e.pos.map { "\(name):\($0)" } ?? name
        if e.raised {
            return TextError(.template, e.message, hint: "raised by raise_exception at \(at)")
        }
        return TextError(.template, "\(at): \(e.message)", hint: hint)
    }
}
