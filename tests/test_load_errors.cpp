// load_model and the CLI on bad model folders and bad requests: each must end in
// one unmask::Error line naming the file / field / tensor / value (the CLI: that
// line on stderr and exit code 1), never a crash or a hang. Also: a sharded copy
// of llada-tiny loads and computes exactly what the single file does.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "unmask/error.h"
#include "unmask/model.h"

namespace unmask {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::StTensor;
using test::TempDir;
using test::throws_error;

// A model folder in a temp dir: the fixture's config and tokenizer files, its
// config.json passed through `edit`, and its f32 weights either linked in
// unchanged or passed through `edit_weights` and rewritten.
struct ModelCopy {
  TempDir dir;
  explicit ModelCopy(const std::string& fixture, const std::function<void(json&)>& edit = {},
                     const std::function<void(std::vector<StTensor>&)>& edit_weights = {}) {
    test::copy_model_config(fixture, dir.path());
    if (edit) {
      json config = test::read_json(dir.file("config.json"));
      edit(config);
      test::write_json(dir.file("config.json"), config);
    }
    if (edit_weights) {
      std::vector<StTensor> tensors = test::read_safetensors(fixture + "/model.safetensors");
      edit_weights(tensors);
      test::write_file(dir.file("model.safetensors"), test::safetensors_bytes(tensors));
    } else {
      fs::create_symlink(fixture + "/model.safetensors", dir.file("model.safetensors"));
    }
  }
  const std::string& path() const { return dir.path(); }
};

void erase_tensor(std::vector<StTensor>& tensors, const std::string& name) {
  std::erase_if(tensors, [&](const StTensor& t) { return t.name == name; });
}

StTensor to_bf16(const StTensor& t) {
  StTensor out{t.name, "BF16", t.shape, {}};
  for (size_t i = 0; i + 4 <= t.bytes.size(); i += 4) {
    float f;
    std::memcpy(&f, t.bytes.data() + i, 4);
    const uint16_t h = f32_to_bf16(f);
    out.bytes.push_back(uint8_t(h));
    out.bytes.push_back(uint8_t(h >> 8));
  }
  return out;
}

// ---- folder and config.json ---------------------------------------------------------

TEST(LoadErrors, MissingFolder) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { load_model(dir.file("nowhere")); }, {dir.file("nowhere"), "not a model folder"}));
  // A file is not a folder either.
  test::write_file(dir.file("config.json"), std::string("{}"));
  EXPECT_TRUE(throws_error([&] { load_model(dir.file("config.json")); }, {"config.json", "not a model folder"}));
}

TEST(LoadErrors, MissingConfig) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {dir.file("config.json"), "cannot open"}));
}

TEST(LoadErrors, ConfigIsADirectory) {
  TempDir dir;
  fs::create_directory(dir.file("config.json"));
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {dir.file("config.json"), "not a regular file"}));
}

TEST(LoadErrors, FifosDoNotBlock) {
  // A named pipe with no writer would block open() forever.
  TempDir dir;
  ASSERT_EQ(mkfifo(dir.file("config.json").c_str(), 0600), 0);
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {dir.file("config.json"), "not a regular file"}));
  ModelCopy m(test::llada_dir());
  fs::remove(m.dir.file("model.safetensors"));
  ASSERT_EQ(mkfifo(m.dir.file("model.safetensors").c_str(), 0600), 0);
  EXPECT_TRUE(throws_error([&] { load_model(m.path()); }, {m.dir.file("model.safetensors"), "not a regular file"}));
}

TEST(LoadErrors, MalformedConfig) {
  TempDir dir;
  test::write_file(dir.file("config.json"), std::string(R"({"architectures": ["LLaDAModelLM"], "d_model": )"));
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {dir.file("config.json"), "malformed JSON"}));
  test::write_file(dir.file("config.json"), std::string("[\"LLaDAModelLM\"]"));
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {dir.file("config.json"), "expected a JSON object"}));
}

TEST(LoadErrors, UnknownArchitecture) {
  ModelCopy m(test::llada_dir(), [](json& c) {
    c["architectures"] = {"GPT2LMHeadModel"};
    c["model_type"] = "gpt2";
  });
  EXPECT_TRUE(throws_error([&] { load_model(m.path()); },
                           {"config.json", "unknown architecture 'GPT2LMHeadModel'", "model_type 'gpt2'", "LLaDAModelLM",
                            "DreamModel"}));
  ModelCopy none(test::llada_dir(), [](json& c) {
    c.erase("architectures");
    c.erase("model_type");
  });
  EXPECT_TRUE(throws_error([&] { load_model(none.path()); }, {"config.json", "unknown architecture 'none'"}));
}

TEST(LoadErrors, ModelTypeAloneSelectsTheFamily) {
  ModelCopy m(test::dream_dir(), [](json& c) { c.erase("architectures"); });
  EXPECT_EQ(load_model(m.path())->config.family, "dream");
}

TEST(LoadErrors, MissingRequiredField) {
  ModelCopy llada(test::llada_dir(), [](json& c) { c.erase("d_model"); });
  EXPECT_TRUE(throws_error([&] { load_model(llada.path()); }, {"config.json", "field 'd_model' is missing"}));
  ModelCopy dream(test::dream_dir(), [](json& c) { c["intermediate_size"] = nullptr; });
  EXPECT_TRUE(throws_error([&] { load_model(dream.path()); }, {"config.json", "field 'intermediate_size' is missing"}));
}

TEST(LoadErrors, NonIntegerField) {
  ModelCopy text(test::llada_dir(), [](json& c) { c["n_layers"] = "3"; });
  EXPECT_TRUE(throws_error([&] { load_model(text.path()); },
                           {"config.json", "field 'n_layers' must be an integer, got \"3\""}));
  ModelCopy fraction(test::dream_dir(), [](json& c) { c["num_attention_heads"] = 3.5; });
  EXPECT_TRUE(throws_error([&] { load_model(fraction.path()); },
                           {"config.json", "field 'num_attention_heads' must be an integer, got 3.5"}));
  ModelCopy flag(test::llada_dir(), [](json& c) { c["weight_tying"] = 0; });
  EXPECT_TRUE(throws_error([&] { load_model(flag.path()); },
                           {"config.json", "field 'weight_tying' must be true or false, got 0"}));
}

TEST(LoadErrors, ZeroOrNegativeSizes) {
  // A zero head count must not reach the d_model % n_heads division.
  ModelCopy heads(test::llada_dir(), [](json& c) { c["n_heads"] = 0; });
  EXPECT_TRUE(throws_error([&] { load_model(heads.path()); }, {"config.json", "n_heads", "0"}));
  ModelCopy dream_heads(test::dream_dir(), [](json& c) { c["num_attention_heads"] = 0; });
  EXPECT_TRUE(throws_error([&] { load_model(dream_heads.path()); }, {"config.json", "num_attention_heads", "0"}));
  ModelCopy kv(test::llada_dir(), [](json& c) { c["n_kv_heads"] = 0; });
  EXPECT_TRUE(throws_error([&] { load_model(kv.path()); }, {"config.json", "kv head count must be positive, got 0"}));
  ModelCopy layers(test::dream_dir(), [](json& c) { c["num_hidden_layers"] = -2; });
  EXPECT_TRUE(throws_error([&] { load_model(layers.path()); }, {"config.json", "layer count must be positive, got -2"}));
  ModelCopy groups(test::llada_dir(), [](json& c) { c["n_kv_heads"] = 3; });
  EXPECT_TRUE(throws_error([&] { load_model(groups.path()); }, {"config.json", "4 heads not divisible by 3 kv heads"}));
}

TEST(LoadErrors, NonsenseNumbers) {
  ModelCopy context(test::llada_dir(), [](json& c) { c["max_sequence_length"] = 0; });
  EXPECT_TRUE(throws_error([&] { load_model(context.path()); }, {"config.json", "context length must be positive, got 0"}));
  ModelCopy theta(test::dream_dir(), [](json& c) { c["rope_theta"] = -1.0; });
  EXPECT_TRUE(throws_error([&] { load_model(theta.path()); }, {"config.json", "rope_theta must be a positive number"}));
  ModelCopy eps(test::llada_dir(), [](json& c) { c["rms_norm_eps"] = -1e-5; });
  EXPECT_TRUE(throws_error([&] { load_model(eps.path()); }, {"config.json", "rms_norm_eps must be a non-negative number"}));
}

TEST(LoadErrors, SizeBeyondIntRange) {
  // 2^32 + 64 would silently become 64 if narrowed to int.
  ModelCopy m(test::llada_dir(), [](json& c) { c["d_model"] = 4294967360LL; });
  EXPECT_TRUE(throws_error([&] { load_model(m.path()); }, {"config.json", "d_model", "4294967360"}));
}

TEST(LoadErrors, UnsupportedFamilyOptions) {
  ModelCopy block(test::llada_dir(), [](json& c) { c["block_type"] = "sequential"; });
  EXPECT_TRUE(throws_error([&] { load_model(block.path()); }, {"config.json", "field 'block_type' is 'sequential'"}));
  ModelCopy scaling(test::dream_dir(), [](json& c) { c["rope_scaling"] = {{"type", "yarn"}}; });
  EXPECT_TRUE(throws_error([&] { load_model(scaling.path()); }, {"config.json", "field 'rope_scaling'"}));
}

TEST(LoadErrors, SpecialTokenOutsideVocab) {
  ModelCopy m(test::llada_dir(), [](json& c) { c["mask_token_id"] = 9999; });
  EXPECT_TRUE(throws_error([&] { load_model(m.path()); }, {"config.json", "mask token id 9999 >= vocab 512"}));
}

TEST(LoadErrors, MalformedSideFiles) {
  ModelCopy gen(test::llada_dir());
  test::write_file(gen.dir.file("generation_config.json"), std::string("{\"steps\": 12,"));
  EXPECT_TRUE(throws_error([&] { load_model(gen.path()); }, {"generation_config.json", "malformed JSON"}));
  ModelCopy tok(test::llada_dir());
  test::write_file(tok.dir.file("tokenizer.json"), std::string("{\"added_tokens\": ["));
  EXPECT_TRUE(throws_error([&] { load_model(tok.path()); }, {"tokenizer.json", "malformed JSON"}));
}

TEST(LoadErrors, OddlyTypedAddedTokensAreIgnored) {
  // Entries that do not look like {"id": int, "content": string} name no special token.
  ModelCopy m(test::dream_dir());
  test::write_json(m.dir.file("tokenizer.json"),
                   {{"added_tokens", {{{"id", 5}, {"content", 7}}, {{"id", "x"}, {"content", "<|im_end|>"}}, 3}}});
  const auto model = load_model(m.path());
  EXPECT_EQ(model->config.special.eot, -1);
  EXPECT_EQ(model->config.special.mask, 511);  // from config.json
}

// ---- weight files ------------------------------------------------------------------

TEST(LoadErrors, NoWeightsFile) {
  TempDir dir;
  test::copy_model_config(test::llada_dir(), dir.path());
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {dir.path(), "no model.safetensors and no *.safetensors file"}));
  EXPECT_TRUE(throws_error([&] { load_model(dir.path(), LoadOptions{.weights_file = "absent.safetensors"}); },
                           {"absent.safetensors", "no such model folder or safetensors file"}));
}

TEST(LoadErrors, TruncatedWeights) {
  TempDir dir;
  test::copy_model_config(test::llada_dir(), dir.path());
  const std::vector<uint8_t> full = test::read_file(test::llada_dir() + "/model.safetensors");
  test::write_file(dir.file("model.safetensors"), full.data(), 5);
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {"model.safetensors", "truncated", "5 bytes"}));
  test::write_file(dir.file("model.safetensors"), full.data(), 100);
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {"model.safetensors", "exceeds file size 100"}));
  // Header intact, data section cut short: the last tensors end outside it.
  test::write_file(dir.file("model.safetensors"), full.data(), full.size() - 1);
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {"model.safetensors", "outside the data section"}));
}

TEST(LoadErrors, MalformedWeightsHeader) {
  TempDir dir;
  test::copy_model_config(test::llada_dir(), dir.path());
  test::write_file(dir.file("model.safetensors"), test::safetensors_image("{\"model.transformer.wte.weight\": {", {}));
  EXPECT_TRUE(throws_error([&] { load_model(dir.path()); }, {"model.safetensors", "malformed safetensors header JSON"}));
}

TEST(LoadErrors, UnknownDtype) {
  ModelCopy m(test::llada_dir(), {}, [](std::vector<StTensor>& t) {
    test::find_tensor(t, "model.transformer.ln_f.weight").dtype = "F8_E5M2";
  });
  EXPECT_TRUE(throws_error([&] { load_model(m.path()); },
                           {"model.safetensors", "tensor 'model.transformer.ln_f.weight'", "unsupported dtype F8_E5M2"}));
}

TEST(LoadErrors, MissingTensor) {
  ModelCopy llada(test::llada_dir(), {}, [](std::vector<StTensor>& t) {
    erase_tensor(t, "model.transformer.blocks.1.q_proj.weight");
  });
  EXPECT_TRUE(throws_error([&] { load_model(llada.path()); },
                           {"model.safetensors", "missing tensor 'model.transformer.blocks.1.q_proj.weight'"}));
  ModelCopy dream(test::dream_dir(), {}, [](std::vector<StTensor>& t) {
    erase_tensor(t, "model.layers.2.self_attn.v_proj.bias");
  });
  EXPECT_TRUE(throws_error([&] { load_model(dream.path()); },
                           {"model.safetensors", "missing tensor 'model.layers.2.self_attn.v_proj.bias'"}));
}

TEST(LoadErrors, MisShapedTensor) {
  ModelCopy m(test::llada_dir(), {}, [](std::vector<StTensor>& t) {
    StTensor& w = test::find_tensor(t, "model.transformer.blocks.0.ff_proj.weight");
    w.shape = {127, 64};
    w.bytes.resize(127 * 64 * 4);
  });
  EXPECT_TRUE(throws_error([&] { load_model(m.path()); },
                           {"model.safetensors", "tensor 'model.transformer.blocks.0.ff_proj.weight'",
                            "has shape [127, 64], expected [128, 64]"}));
  // Same element count, wrong rank.
  ModelCopy flat(test::dream_dir(), {}, [](std::vector<StTensor>& t) {
    test::find_tensor(t, "model.norm.weight").shape = {1, 64};
  });
  EXPECT_TRUE(throws_error([&] { load_model(flat.path()); },
                           {"tensor 'model.norm.weight'", "has shape [1, 64], expected [64]"}));
}

TEST(LoadErrors, MixedDtypes) {
  ModelCopy m(test::llada_dir(), {}, [](std::vector<StTensor>& t) {
    StTensor& w = test::find_tensor(t, "model.transformer.blocks.2.up_proj.weight");
    w = to_bf16(w);
  });
  EXPECT_TRUE(throws_error([&] { load_model(m.path()); },
                           {"tensor 'model.transformer.blocks.2.up_proj.weight' is BF16", "earlier weights are F32",
                            "mixed dtypes"}));
}

TEST(LoadErrors, NonFloatWeights) {
  ModelCopy matrix(test::llada_dir(), {}, [](std::vector<StTensor>& t) {
    test::find_tensor(t, "model.transformer.wte.weight").dtype = "I32";
  });
  EXPECT_TRUE(throws_error([&] { load_model(matrix.path()); },
                           {"tensor 'model.transformer.wte.weight' has dtype I32", "F32 or BF16"}));
  ModelCopy norm(test::dream_dir(), {}, [](std::vector<StTensor>& t) {
    test::find_tensor(t, "model.layers.0.input_layernorm.weight").dtype = "I32";
  });
  EXPECT_TRUE(throws_error([&] { load_model(norm.path()); },
                           {"tensor 'model.layers.0.input_layernorm.weight' has dtype I32", "float type"}));
}

// ---- sharded checkpoint --------------------------------------------------------------

ForwardOutput forward_all_rows(const Model& model, const std::vector<int32_t>& tokens) {
  ForwardBatch batch;
  batch.tokens = tokens;
  for (int32_t i = 0; i < int32_t(tokens.size()); ++i) {
    batch.positions.push_back(i);
    batch.logit_rows.push_back(i);
  }
  ForwardOutput out;
  forward(model, batch, &out);
  return out;
}

TEST(LoadSharded, TwoShardsGiveBitIdenticalLogits) {
  TempDir dir;
  test::copy_model_config(test::llada_dir(), dir.path());
  const std::vector<StTensor> tensors = test::read_safetensors(test::llada_dir() + "/model.safetensors");
  ASSERT_GT(tensors.size(), 2u);
  const size_t half = tensors.size() / 2;
  const std::vector<StTensor> first(tensors.begin(), tensors.begin() + std::ptrdiff_t(half));
  const std::vector<StTensor> second(tensors.begin() + std::ptrdiff_t(half), tensors.end());
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  test::write_file(dir.file(shard1), test::safetensors_bytes(first));
  test::write_file(dir.file(shard2), test::safetensors_bytes(second));
  json weight_map = json::object();
  size_t total = 0;
  for (const StTensor& t : first) weight_map[t.name] = shard1;
  for (const StTensor& t : second) weight_map[t.name] = shard2;
  for (const StTensor& t : tensors) total += t.bytes.size();
  test::write_json(dir.file("model.safetensors.index.json"), {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});

  const auto sharded = load_model(dir.path());
  const auto single = load_model(test::llada_dir());
  EXPECT_NE(sharded->store->description().find("2 shards"), std::string::npos);
  EXPECT_EQ(sharded->store->file_of(tensors.back().name), dir.file(shard2));
  EXPECT_EQ(parameter_count(*sharded), parameter_count(*single));

  const std::vector<int32_t> tokens = {500, 17, 300, 504, 504, 42, 7, 504, 511, 3, 260};
  const ForwardOutput a = forward_all_rows(*sharded, tokens), b = forward_all_rows(*single, tokens);
  ASSERT_EQ(a.logits.size(), tokens.size() * 512);
  ASSERT_EQ(a.logits.size(), b.logits.size());
  // Same bytes, same kernels: the logits must match bit for bit.
  EXPECT_EQ(std::memcmp(a.logits.data(), b.logits.data(), a.logits.size() * sizeof(float)), 0);
}

// ---- the CLI ---------------------------------------------------------------------------

// Runs the CLI under a time limit (a hang shows up as exit code 124) and checks the
// shape of a bad-input failure: exit code 1 (not a signal), stderr exactly one line
// "unmask: error: ..." containing each fragment.
::testing::AssertionResult cli_fails_cleanly(const std::vector<std::string>& args,
                                             std::initializer_list<std::string_view> fragments) {
  TempDir scratch;
  std::vector<std::string> argv = {"timeout", "120", test::cli_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  const test::CommandResult r = test::run_command(argv, scratch);
  if (!r.exited) return ::testing::AssertionFailure() << "killed by signal " << r.signal << "; stderr: " << r.err;
  if (r.exit_code != 1)
    return ::testing::AssertionFailure() << "exit code " << r.exit_code << " (124 = hang), stderr: " << r.err;
  const std::string prefix = "unmask: error: ";
  if (r.err.rfind(prefix, 0) != 0) return ::testing::AssertionFailure() << "stderr does not start with '" << prefix << "': " << r.err;
  if (r.err.find('\n') != r.err.size() - 1) return ::testing::AssertionFailure() << "stderr is not one line: " << r.err;
  for (std::string_view frag : fragments)
    if (r.err.find(frag) == std::string::npos)
      return ::testing::AssertionFailure() << "stderr lacks '" << frag << "': " << r.err;
  return ::testing::AssertionSuccess();
}

class CliErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::cli_built()) GTEST_SKIP() << "CLI not built at " << test::cli_path() << " (build target unmask_cli)";
  }
};

TEST_F(CliErrors, MissingModelFolder) {
  TempDir dir;
  EXPECT_TRUE(cli_fails_cleanly({"inspect", "-m", dir.file("nowhere")}, {dir.file("nowhere"), "not a model folder"}));
}

TEST_F(CliErrors, BrokenWeights) {
  ModelCopy m(test::llada_dir(), {}, [](std::vector<StTensor>& t) {
    erase_tensor(t, "model.transformer.blocks.0.attn_norm.weight");
  });
  EXPECT_TRUE(cli_fails_cleanly({"inspect", "-m", m.path()}, {"missing tensor 'model.transformer.blocks.0.attn_norm.weight'"}));
  test::write_file(m.dir.file("model.safetensors"), test::safetensors_image("{\"a\": [}", {}));
  EXPECT_TRUE(cli_fails_cleanly({"run", "-m", m.path(), "--ids", "1,2,3", "--gen-length", "4"},
                                {"model.safetensors", "malformed safetensors header JSON"}));
}

TEST_F(CliErrors, TokenIdOutOfRange) {
  EXPECT_TRUE(cli_fails_cleanly({"run", "-m", test::llada_dir(), "--ids", "1,99999", "--gen-length", "8"},
                                {"token id 99999", "vocabulary [0, 512)"}));
  EXPECT_TRUE(cli_fails_cleanly({"run", "-m", test::dream_dir(), "--ids=-1,2", "--gen-length", "8"},
                                {"token id -1", "vocabulary [0, 512)"}));
}

TEST_F(CliErrors, PromptPlusGenerationBeyondContext) {
  ModelCopy m(test::llada_dir(), [](json& c) { c["max_sequence_length"] = 40; });
  EXPECT_TRUE(cli_fails_cleanly({"run", "-m", m.path(), "--ids", "1,2,3", "--gen-length", "38", "--block-length", "2"},
                                {"prompt (3 tokens)", "--gen-length 38", "context of 40"}));
}

TEST_F(CliErrors, GenLengthNotDivisibleByBlockLength) {
  EXPECT_TRUE(cli_fails_cleanly({"run", "-m", test::llada_dir(), "--ids", "1,2,3", "--gen-length", "10", "--block-length", "4"},
                                {"gen_length 10", "not a multiple of block_length 4"}));
}

TEST_F(CliErrors, BadScheduleNumbers) {
  EXPECT_TRUE(cli_fails_cleanly(
      {"run", "-m", test::llada_dir(), "--ids", "1,2,3", "--gen-length", "8", "--block-length", "4", "--steps", "3"},
      {"steps 3", "not a multiple of the 2 blocks"}));
  EXPECT_TRUE(cli_fails_cleanly({"run", "-m", test::llada_dir(), "--ids", "1,2,3", "--gen-length", "8", "--block-length", "0"},
                                {"block_length 0 must be positive"}));
  EXPECT_TRUE(cli_fails_cleanly({"run", "-m", test::dream_dir(), "--ids", "1,2,3", "--gen-length", "0"},
                                {"--gen-length must be positive, got 0"}));
}

}  // namespace
}  // namespace unmask
