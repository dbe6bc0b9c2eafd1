// train/checkpoint.cpp — HF-layout checkpoints with resumable training state.
#include "train/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/json_file.h"
#include "unmask/error.h"
#include "unmask/safetensors.h"

namespace unmask::train {

namespace {

namespace fs = std::filesystem;

struct OutTensor {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
  const float* values = nullptr;  // numel f32 values, converted when dtype is BF16
  size_t numel = 0;
};

// Writes `path` through "<path>.tmp" + rename, so a reader never sees a partial file.
template <class Fill>
void write_atomically(const std::string& path, Fill fill) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(bool(out), tmp + ": cannot create file");
    fill(out);
    check(bool(out), tmp + ": write failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  check(!ec, path + ": cannot rename " + tmp + " into place: " + ec.message());
}

void write_bytes(const std::string& path, const std::string& head, const std::vector<OutTensor>& tensors) {
  write_atomically(path, [&](std::ofstream& out) {
    out.write(head.data(), std::streamsize(head.size()));
    std::vector<uint16_t> half;
    for (const OutTensor& t : tensors) {
      if (t.dtype == DType::BF16) {
        half.resize(t.numel);
        for (size_t i = 0; i < t.numel; ++i) half[i] = f32_to_bf16(t.values[i]);
        out.write(reinterpret_cast<const char*>(half.data()), std::streamsize(t.numel * 2));
      } else {
        out.write(reinterpret_cast<const char*>(t.values), std::streamsize(t.numel * 4));
      }
    }
  });
}

// safetensors: 8-byte LE header length, JSON header padded to 8 bytes, data.
void write_safetensors(const std::string& path, const std::vector<OutTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  size_t offset = 0;
  for (const OutTensor& t : tensors) {
    const size_t bytes = t.numel * dtype_size(t.dtype);
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h += ' ';
  std::string head(8, '\0');
  for (int i = 0; i < 8; ++i) head[size_t(i)] = char(uint8_t(uint64_t(h.size()) >> (8 * i)));
  write_bytes(path, head + h, tensors);
}

void write_text(const std::string& path, const std::string& text) {
  write_atomically(path, [&](std::ofstream& out) { out << text; });
}

nlohmann::json llada_config(const ModelShape& s, const SpecialTokens& special, DType dtype) {
  nlohmann::json c = {
      {"architectures", {"LLaDAModelLM"}},
      {"model_type", "llada"},
      {"activation_type", "silu"},
      {"alibi", false},
      {"attention_layer_norm", false},
      {"block_type", "llama"},
      {"d_model", s.hidden},
      {"n_heads", s.heads},
      {"n_kv_heads", s.heads},
      {"n_layers", s.layers},
      {"mlp_hidden_size", s.ffn},
      {"mlp_ratio", s.ffn / s.hidden},
      {"vocab_size", s.vocab},
      {"embedding_size", s.vocab},
      {"include_bias", false},
      {"include_qkv_bias", false},
      {"input_emb_norm", false},
      {"layer_norm_type", "rms"},
      {"rms_norm_eps", s.rms_eps},
      {"rope", true},
      {"rope_full_precision", true},
      {"rope_theta", s.rope_theta},
      {"scale_logits", false},
      {"weight_tying", false},
      {"max_sequence_length", s.max_context},
      {"torch_dtype", dtype == DType::BF16 ? "bfloat16" : "float32"},
  };
  if (special.mask >= 0) c["mask_token_id"] = special.mask;
  if (special.eos >= 0) c["eos_token_id"] = special.eos;
  if (special.pad >= 0) c["pad_token_id"] = special.pad;
  if (special.bos >= 0) c["bos_token_id"] = special.bos;
  return c;
}

}  // namespace

nlohmann::json shape_to_json(const ModelShape& s) {
  return {{"hidden", s.hidden}, {"layers", s.layers},         {"heads", s.heads},
          {"ffn", s.ffn},       {"vocab", s.vocab},           {"rope_theta", s.rope_theta},
          {"rms_eps", s.rms_eps}, {"max_context", s.max_context}};
}

ModelShape shape_from_json(const nlohmann::json& j, const std::string& file) {
  check(j.is_object(), file + ": field 'shape' must be an object");
  const JsonFields f(j, file + " (shape)");
  ModelShape s;
  s.hidden = f.int32("hidden");
  s.layers = f.int32("layers");
  s.heads = f.int32("heads");
  s.ffn = f.int32("ffn");
  s.vocab = f.int32("vocab");
  s.rope_theta = f.number("rope_theta");
  s.rms_eps = f.number("rms_eps");
  s.max_context = f.int32("max_context");
  return s;
}

void save_checkpoint(const std::string& dir, const CheckpointData& data, const std::string& tokenizer_dir,
                     const SpecialTokens& special, DType save_dtype) {
  check(save_dtype == DType::F32 || save_dtype == DType::BF16, "checkpoint: save dtype must be F32 or BF16");
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, dir + ": cannot create checkpoint folder: " + ec.message());
  const ParamLayout& l = data.layout;
  std::vector<OutTensor> model, state;
  for (const TensorSlot& s : l.slots) {
    model.push_back({s.name, s.shape, save_dtype, data.params.data() + s.offset, s.numel});
    state.push_back({"param." + s.name, s.shape, DType::F32, data.params.data() + s.offset, s.numel});
    state.push_back({"adam_m." + s.name, s.shape, DType::F32, data.adam_m.data() + s.offset, s.numel});
    state.push_back({"adam_v." + s.name, s.shape, DType::F32, data.adam_v.data() + s.offset, s.numel});
  }
  write_safetensors(dir + "/model.safetensors", model);
  write_safetensors(dir + "/training_state.safetensors", state);
  write_text(dir + "/training_state.json", data.state.dump(2) + "\n");
  write_text(dir + "/config.json", llada_config(l.shape, special, save_dtype).dump(2) + "\n");
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    const fs::path from = fs::path(tokenizer_dir) / name, to = fs::path(dir) / name;
    if (!fs::exists(from) || (fs::exists(to) && fs::equivalent(from, to))) continue;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    check(!ec, to.string() + ": cannot copy tokenizer file: " + ec.message());
  }
}

CheckpointData load_checkpoint(const std::string& dir) {
  CheckpointData d;
  const std::string state_file = dir + "/training_state.json";
  d.state = read_json_file(state_file);
  check(d.state.is_object() && d.state.contains("step") && d.state["step"].is_number_integer() &&
            d.state.contains("shape"),
        state_file + ": needs integer field 'step' and object 'shape'");
  d.layout = make_param_layout(shape_from_json(d.state["shape"], state_file));
  const std::string tensors_file = dir + "/training_state.safetensors";
  const auto store = TensorStore::open(tensors_file);
  d.params.resize(d.layout.total);
  d.adam_m.resize(d.layout.total);
  d.adam_v.resize(d.layout.total);
  for (const TensorSlot& s : d.layout.slots) {
    for (auto [prefix, buf] : {std::pair{"param.", &d.params}, {"adam_m.", &d.adam_m}, {"adam_v.", &d.adam_v}}) {
      const std::string name = prefix + s.name;
      const TensorView v = store->get(name);
      check(v.dtype == DType::F32 && size_t(v.numel()) == s.numel,
            tensors_file + ": tensor " + name + " must be F32 with " + std::to_string(s.numel) + " elements, got " +
                std::string(dtype_name(v.dtype)) + " " + shape_string(v));
      std::memcpy(buf->data() + s.offset, v.data, s.numel * sizeof(float));
    }
  }
  return d;
}

}  // namespace unmask::train
