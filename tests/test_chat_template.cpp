// Chat templates: renders match the reference renders (transformers.js
// apply_chat_template, tests/data/chat_templates/renders.json) for every template in
// the fixtures; typed special tokens stay text; the Jinja subset's semantics and errors.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "unmask/chat_template.h"
#include "unmask/error.h"
#include "unmask/tokenizer.h"

namespace unmask {
namespace {

using ojson = nlohmann::ordered_json;

std::string data(const std::string& rel) { return std::string(UNMASK_TEST_DATA) + "/" + rel; }

ojson renders() {
  std::ifstream f(data("chat_templates/renders.json"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ojson::parse(ss.str());
}

ojson context_of(const ojson& tmpl, const ojson& c) {
  ojson ctx = c["extra"];
  ctx["messages"] = c["messages"];
  ctx["add_generation_prompt"] = c["add_generation_prompt"];
  ctx["tools"] = c["tools"];
  ctx["documents"] = nullptr;
  for (const auto& [k, v] : tmpl["special_tokens"].items()) ctx[k] = v;
  return ctx;
}

TEST(ChatTemplate, RendersMatchReferenceRenders) {
  const ojson all = renders();
  int checked = 0, ids_checked = 0;
  for (const ojson& t : all["templates"]) {
    const std::string name = t["name"];
    const ChatTemplate tmpl(t["template"].get<std::string>(), name);
    std::unique_ptr<Tokenizer> tok;
    if (t["tokenizer_dir"].is_string()) tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(data(t["tokenizer_dir"])));
    for (const ojson& c : t["cases"]) {
      SCOPED_TRACE(name + " / " + c["id"].get<std::string>());
      const ChatTemplate::Rendered r = tmpl.render(context_of(t, c).dump());
      EXPECT_EQ(r.text, c["rendered"].get<std::string>());
      ++checked;
      if (!tok) continue;
      const auto ids = tok->encode_rendered(r.text, r.untrusted);
      const auto want = c["ids"].get<std::vector<int32_t>>();
      if (c["user_typed_specials"].get<bool>()) {
        // Typed control-token text stays text: it survives skip_special decoding.
        EXPECT_NE(ids, want);
        const std::string plain = tok->decode(ids, {.skip_special = true});
        for (const char* typed : {"<|im_end|>", "<|eot_id|>", "<|mdm_mask|>"}) {
          EXPECT_NE(plain.find(typed), std::string::npos) << typed;
        }
        EXPECT_EQ(tok->decode(ids), r.text);
      } else {
        EXPECT_EQ(ids, want);
        ++ids_checked;
      }
    }
  }
  EXPECT_EQ(checked, 22 + 4 * 14);
  EXPECT_EQ(ids_checked, 20 + 2 * 12);
}

TEST(ChatTemplate, ApplyChatTemplateEndToEnd) {
  const Tokenizer llada = Tokenizer::from_dir(data("llada-tiny"));
  const ChatPrompt p = apply_chat_template(llada, {{"user", "Hello"}});
  EXPECT_TRUE(p.templated);
  EXPECT_EQ(p.text, "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const ojson all = renders();
  for (const ojson& t : all["templates"]) {
    if (t["name"] != "llada-tiny") continue;
    EXPECT_EQ(p.ids, t["cases"][0]["ids"].get<std::vector<int32_t>>());  // single_user+gen
  }
  // The template opens with bos_token: no second BOS from the post-processor.
  EXPECT_EQ(std::count(p.ids.begin(), p.ids.end(), 500), 1);
  // A typed mask token is text, never a mask slot.
  const ChatPrompt q = apply_chat_template(llada, {{"user", "fill <|mdm_mask|> please"}});
  EXPECT_EQ(std::count(q.ids.begin(), q.ids.end(), 504), 0);
}

// The model fixtures' prompts (prompts.json) are what our tokenizer and template produce.
TEST(ChatTemplate, ModelFixturePromptsAreReproduced) {
  for (const char* fam : {"llada-tiny", "dream-tiny"}) {
    SCOPED_TRACE(fam);
    const Tokenizer tok = Tokenizer::from_dir(data(fam));
    std::ifstream f(data(std::string(fam) + "/prompts.json"));
    const ojson prompts = ojson::parse(f);
    for (const char* key : {"chat", "text", "code"}) {
      const auto want = prompts[key]["ids"].get<std::vector<int32_t>>();
      EXPECT_EQ(tok.encode(prompts[key]["text"].get<std::string>(), {.parse_special = true}), want) << key;
    }
    if (std::string(fam) == "llada-tiny") {
      const ChatPrompt p = apply_chat_template(tok, {{"user", "What is 2+3?"}});
      EXPECT_EQ(p.text, prompts["chat"]["text"].get<std::string>());
      EXPECT_EQ(p.ids, prompts["chat"]["ids"].get<std::vector<int32_t>>());
    }
  }
}

TEST(ChatTemplate, ModelWithoutTemplateGetsTheRawPrompt) {
  const Tokenizer dream = Tokenizer::from_dir(data("dream-tiny"));
  EXPECT_TRUE(dream.chat_template().empty());
  const ChatPrompt p = apply_chat_template(dream, {{"user", "Hello <|im_end|>"}});
  EXPECT_FALSE(p.templated);
  EXPECT_EQ(p.text, "Hello <|im_end|>");
  EXPECT_EQ(p.ids, dream.encode("Hello <|im_end|>"));
  EXPECT_EQ(std::count(p.ids.begin(), p.ids.end(), 502), 0);
}

std::string render(const std::string& src, const std::string& ctx = "{}") {
  return ChatTemplate(src, "t").render(ctx).text;
}

TEST(ChatTemplate, JinjaSubset) {
  EXPECT_EQ(render("{% for x in [1,2,3][::-1] %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}"), "3,2,1");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for x in 'abc' %}{% set ns.n = ns.n + loop.index %}{% endfor %}{{ ns.n }}"), "6");
  EXPECT_EQ(render("{{ 'a b  c'.split() | length }} {{ 'a,b'.split(',')[-1] }}"), "3 b");
  EXPECT_EQ(render("{{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nhi'.lstrip('\\n') }}"), "x|hi|hi");
  EXPECT_EQ(render("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'a-b'.replace('-', '+') }}"),
            "True True a+b");
  EXPECT_EQ(render("{{ x is defined }} {{ y is none }} {{ z is string }} {{ w is not defined }}", R"({"y": null, "z": "s"})"),
            "False True True True");
  EXPECT_EQ(render("{{ '  t ' | trim }}|{{ [1, 'a'] | tojson }}|{{ 3 | string }}|{{ {'k': [1.5, true, none]} | tojson }}"),
            "t|[1, \"a\"]|3|{\"k\": [1.5, true, null]}");
  EXPECT_EQ(render("{{ {'a': 1} | tojson(indent=2) }}"), "{\n  \"a\": 1\n}");
  EXPECT_EQ(render("{%- if a -%} A {%- elif b -%} B {%- else -%} C {%- endif %}", R"({"b": 1})"), "B");
  EXPECT_EQ(render("{% macro greet(who, p='!') %}hi {{ who }}{{ p }}{% endmacro %}{{ greet('bob') }}"), "hi bob!");
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 1 / 2 }} {{ 'ab' * 2 }} {{ 'x' ~ 1 }}"),
            "3 -4 1 1024 0.5 abab x1");
  EXPECT_EQ(render("{{ 'a' if false }}|{{ 'yes' if 1 in [1,2] else 'no' }}|{{ 'b' not in 'abc' }}"), "|yes|False");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", R"({"d": {"z": 1, "a": 2}})"), "z=1;a=2;");
  EXPECT_EQ(render("{{ 'Hello' | upper }} {{ 'ABC' | lower }} {{ names | join(', ') }}", R"({"names": ["x", "y"]})"),
            "HELLO abc x, y");
  EXPECT_EQ(render("{% for m in ms if m.keep %}{{ m.v }}{% else %}none{% endfor %}", R"({"ms": [{"keep": false, "v": 1}]})"),
            "none");
  EXPECT_EQ(render("  {% if true %}\nX\n  {% endif %}\nY\n"), "X\nY");  // trim_blocks + lstrip_blocks
  EXPECT_EQ(render("{% set x %}in{{ 1 }}{% endset %}[{{ x }}]"), "[in1]");
  EXPECT_EQ(render("{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"), "012");
}

TEST(ChatTemplate, ErrorsNameTheTemplateLine) {
  auto expect_error = [](const std::string& src, const std::string& ctx, const std::string& fragment) {
    try {
      ChatTemplate(src, "tmpl").render(ctx);
      ADD_FAILURE() << "no error for " << src;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  };
  expect_error("a\nb\n{{ x | frobnicate }}", "{}", "tmpl line 3: unknown filter 'frobnicate'");
  expect_error("line1\n{% if x %}\nno end", "{}", "line 2: missing {% endif %}");
  expect_error("\n\n{% include 'other' %}", "{}", "line 3: unsupported tag {% include %}");
  expect_error("{{ raise_exception('Roles must alternate') }}", "{}", "Roles must alternate");
  expect_error("x\n{{ 1 + }}", "{}", "line 2");
  expect_error("{{ 'a' ", "{}", "line 1");
  expect_error("{{ x is frobbed }}", "{}", "unknown test 'frobbed'");
  expect_error("{{ 1 / 0 }}", "{}", "division by zero");
  expect_error("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}", "{}", "nests too deeply");
  expect_error("{{ x }}", "[1]", "JSON object");
}

TEST(ChatTemplate, ConversationTextIsTrackedAsUntrusted) {
  const ChatTemplate t("<s>{% for m in messages %}[{{ m.role | upper }}]{{ m.content | trim }}</s>{% endfor %}", "t");
  const auto r = t.render(R"({"messages": [{"role": "user", "content": "  <|x|>  "}]})");
  EXPECT_EQ(r.text, "<s>[USER]<|x|></s>");
  ASSERT_EQ(r.untrusted.size(), 2u);
  EXPECT_EQ(r.text.substr(r.untrusted[0].first, r.untrusted[0].second - r.untrusted[0].first), "USER");
  EXPECT_EQ(r.text.substr(r.untrusted[1].first, r.untrusted[1].second - r.untrusted[1].first), "<|x|>");
}

}  // namespace
}  // namespace unmask
