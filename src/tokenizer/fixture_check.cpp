// tokenizer/fixture_check.cpp — runs encodings.jsonl fixtures against unmask::Tokenizer.
#include "tokenizer/fixture_check.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "unmask/error.h"
#include "unmask/tokenizer.h"
#include "tokenizer/json_load.h"

namespace unmask::tok {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string ids_str(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

std::string shorten(const std::string& s) { return s.size() > 300 ? s.substr(0, 300) + "..." : s; }

// Where the fixture's tokenizer.json is: next to encodings.jsonl, or as named by the
// parent directory's manifest.json ("tokenizers" -> name -> "tokenizer_json").
fs::path find_tokenizer_json(const fs::path& dir) {
  if (fs::exists(dir / "tokenizer.json")) return dir / "tokenizer.json";
  const fs::path manifest = dir.parent_path() / "manifest.json";
  const std::string name = dir.filename().string();
  if (fs::exists(manifest)) {
    const json m = json::parse(read_text_file(manifest.string()), nullptr, false);
    if (!m.is_discarded() && m.contains("tokenizers") && m["tokenizers"].contains(name) &&
        m["tokenizers"][name].contains("tokenizer_json") && m["tokenizers"][name]["tokenizer_json"].is_string()) {
      return (dir / m["tokenizers"][name]["tokenizer_json"].get<std::string>()).lexically_normal();
    }
  }
  throw Error(dir.string() + ": no tokenizer.json here and none named for \"" + name + "\" in " + manifest.string());
}

void check_one(const fs::path& dir, const std::function<void(const FixtureResult&)>& report) {
  const std::string fixture = dir.filename().string();
  std::unique_ptr<Tokenizer> tok;
  try {
    const fs::path tj = find_tokenizer_json(dir);
    fs::path tc = tj.parent_path() / "tokenizer_config.json";
    if (!fs::exists(tc)) tc = dir / "tokenizer_config.json";
    const auto t0 = std::chrono::steady_clock::now();
    tok = std::make_unique<Tokenizer>(Tokenizer::from_files(tj.string(), fs::exists(tc) ? tc.string() : ""));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("# %s: %s (vocab %d) loaded in %.0f ms\n", fixture.c_str(), tj.string().c_str(), tok->vocab_size(), ms);
  } catch (const std::exception& e) {
    report({fixture, false, false, std::string("cannot load tokenizer: ") + e.what()});
    return;
  }
  std::istringstream lines(read_text_file((dir / "encodings.jsonl").string()));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    FixtureResult r;
    r.name = fixture + ":" + std::to_string(++n);
    std::vector<std::string> bad;
    try {
      const json e = json::parse(line);
      const std::string text = e.at("text").get<std::string>();
      const auto want_ids = e.at("ids").get<std::vector<int32_t>>();
      const auto ids = tok->encode(text, EncodeOptions{true, false});
      if (ids != want_ids) bad.push_back("ids " + ids_str(ids) + " != expected " + ids_str(want_ids));
      if (e.contains("ids_add_special_tokens")) {
        const auto want = e["ids_add_special_tokens"].get<std::vector<int32_t>>();
        const auto got = tok->encode(text, EncodeOptions{true, true});
        if (got != want) bad.push_back("ids_add_special_tokens " + ids_str(got) + " != expected " + ids_str(want));
      }
      if (e.contains("tokens")) {
        const auto want = e["tokens"].get<std::vector<std::string>>();
        std::vector<std::string> got;
        for (int32_t id : want_ids) got.push_back(tok->id_to_token(id));
        if (got != want) bad.push_back("tokens " + json(got).dump() + " != expected " + json(want).dump());
      }
      if (e.contains("decoded")) {
        const std::string got = tok->decode(want_ids);
        if (got != e["decoded"].get<std::string>()) {
          bad.push_back("decoded " + json(got).dump() + " != expected " + e["decoded"].dump());
        }
      }
      if (e.contains("decoded_skip_special")) {
        const std::string got = tok->decode(want_ids, DecodeOptions{true, std::nullopt});
        if (got != e["decoded_skip_special"].get<std::string>()) {
          bad.push_back("decoded_skip_special " + json(got).dump() + " != expected " + e["decoded_skip_special"].dump());
        }
      }
    } catch (const std::exception& ex) {
      bad.push_back(std::string("error: ") + ex.what());
    }
    r.passed = bad.empty();
    for (size_t i = 0; i < bad.size(); ++i) r.message += (i ? "; " : "") + shorten(bad[i]);
    report(r);
  }
}

}  // namespace

bool is_tokenizer_fixture_dir(const std::string& dir) {
  const fs::path d(dir);
  if (fs::exists(d / "encodings.jsonl")) return true;
  const fs::path manifest = d / "manifest.json";
  if (!fs::exists(manifest)) return false;
  const json m = json::parse(read_text_file(manifest.string()), nullptr, false);
  return !m.is_discarded() && m.is_object() && m.contains("tokenizers") && m["tokenizers"].is_object();
}

void check_tokenizer_fixtures(const std::string& dir, const std::function<void(const FixtureResult&)>& report) {
  const fs::path d(dir);
  if (fs::exists(d / "encodings.jsonl")) {
    check_one(d, report);
    return;
  }
  const json m = json::parse(read_text_file((d / "manifest.json").string()), nullptr, false);
  if (m.is_discarded() || !m.contains("tokenizers")) throw Error(dir + ": manifest.json has no \"tokenizers\"");
  for (const auto& [name, entry] : m["tokenizers"].items()) {
    const fs::path sub = d / name;
    if (!fs::exists(sub / "encodings.jsonl")) {
      report({name, false, true, "no encodings.jsonl in " + sub.string()});
      continue;
    }
    check_one(sub, report);
  }
}

}  // namespace unmask::tok
