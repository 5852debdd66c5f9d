// Built-in training text for synthetic tokenizers: a few kilobytes of prose, chat and code, cut into words
// the way byte-level pre-tokenizers cut them (a leading space stays on the word).

enum BuiltinText {
    static let paragraphs = [
        "The quick brown fox jumps over the lazy dog while the model serves requests across many ranks.",
        "Each rank holds a shard of the model: pipeline stages own contiguous layers, and the ranks of a stage own disjoint sets of routed experts.",
        "Tokens reach their experts through an all-to-all exchange, and the outputs come back in a fixed order, so the result does not depend on the layout.",
        "Hello! How are you today? I am fine, thank you. What would you like to talk about?",
        "Please write a short story about a lighthouse keeper who finds a message in a bottle.",
        "The weather will be sunny in the morning, with clouds in the afternoon and light rain in the evening.",
        "A mixture of experts routes every token to a few of its feed-forward networks and adds their weighted outputs.",
        "You are a helpful assistant. Answer the question as well as you can, and say so when you do not know.",
        "The system prompt sets the tone; the user asks; the assistant answers; a tool returns its result.",
        "Once upon a time there was a small village at the edge of a great forest, and everyone who lived there knew the old stories.",
        "She said that they would meet at the station at nine o'clock, but the train was late and it was already dark.",
        "We measure tokens per second, time to the first token, and the latency between tokens at the median and the tail.",
        "In 2025 many open models used sparse experts; the largest ones need several machines, because their weights do not fit one node.",
        "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 256 1024 2048 4096 65536 3.14159 2.71828 1,000,000 12:30 2026-12-07",
        "def forward(self, x):\n    h = self.norm(x)\n    return x + self.mlp(h)\n",
        "func encode(_ text: String) -> [Int] {\n    var ids: [Int] = []\n    for word in split(text) { ids += merge(word) }\n    return ids\n}\n",
        "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }",
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}",
        "import numpy as np\nprint(np.arange(10).reshape(2, 5).sum(axis=0))\n",
        "It's, don't, we'll, they're, I've, you'd, he's: contractions are common in English text.",
        "Questions? Answers! Lists: first, second, third; and so on... (parentheses) [brackets] {braces} <angles>",
        "The server streams each token as it is generated, and the client prints the text as soon as it arrives.",
        "你好，世界。今天天气很好。我们一起去公园散步吧。",
        "こんにちは、世界。今日はいい天気ですね。",
        "안녕하세요, 세계. 오늘은 날씨가 좋네요.",
        "Ünïcödé, café, naïve, façade, Zürich, São Paulo, Kraków, Ærøskøbing.",
        "Emoji: 🙂 🚀 🎉 👍 — and symbols: € £ ¥ © ® ™ ± × ÷ ∞ ≤ ≥ ≠ → ←",
    ]

    /// Words with their leading space; digit runs of up to three; punctuation runs; newlines alone.
    static func words() -> [[UInt8]] {
        var out: [[UInt8]] = []
        for p in paragraphs {
            var current: [UInt8] = []
            var kind = 0   // 1 letters, 2 digits, 3 other
            func flush() { if !current.isEmpty { out.append(current); current = [] } }
            for scalar in p.unicodeScalars {
                let bytes = Array(String(scalar).utf8)
                let k: Int
                if scalar.properties.isAlphabetic { k = 1 } else if ("0"..."9").contains(scalar) { k = 2 }
                else if scalar == " " { flush(); current = bytes; kind = 0; continue }
                else if scalar == "\n" { flush(); out.append(bytes); kind = 0; continue }
                else { k = 3 }
                if k != kind && !(kind == 0 && !current.isEmpty) || (k == 2 && current.count >= 3 && kind == 2) { flush() }
                current += bytes
                kind = k
            }
            flush()
        }
        return out
    }
}
