// tests/test_util.h — helpers shared by the tests: self-deleting temp folders,
// small safetensors files built from in-memory tensors (valid or deliberately
// broken), copies of the fixture model folders, and running the CLI with its
// output captured. Header-only so any test file can include it.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "unmask/model.h"
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "unmask/error.h"
#include "unmask/safetensors.h"

namespace unmask::test {

inline std::string data_dir() { return UNMASK_TEST_DATA; }
inline std::string llada_dir() { return data_dir() + "/llada-tiny"; }
inline std::string dream_dir() { return data_dir() + "/dream-tiny"; }

// Passes when `f` throws unmask::Error whose message is one line containing
// every fragment; reports what was thrown (or that nothing was) otherwise.
template <class F>
::testing::AssertionResult throws_error(F&& f, std::initializer_list<std::string_view> fragments) {
  try {
    f();
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.find('\n') != std::string::npos) return ::testing::AssertionFailure() << "message spans lines: " << m;
    for (std::string_view frag : fragments)
      if (m.find(frag) == std::string::npos)
        return ::testing::AssertionFailure() << "message lacks '" << frag << "': " << m;
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-unmask exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "no error was thrown";
}

// A fresh folder under the system temp dir, removed with everything in it when
// the object dies, so failed tests leave nothing behind.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "unmask-test-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Replaces `path`: an existing symlink (ModelCopy links the fixtures' weights) is
// removed, never written through.
inline void write_file(const std::string& path, const void* data, size_t size) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), std::streamsize(size));
  if (!out) throw std::runtime_error("cannot write " + path);
}
inline void write_file(const std::string& path, const std::string& text) { write_file(path, text.data(), text.size()); }
inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file(path, bytes.data(), bytes.size());
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
inline std::string read_text(const std::string& path) {
  const std::vector<uint8_t> b = read_file(path);
  return std::string(b.begin(), b.end());
}

// One tensor to serialize. `dtype` is the safetensors spelling, so tests can also
// write dtypes unmask does not know.
struct StTensor {
  std::string name;
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

inline StTensor f32_tensor(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values) {
  StTensor t{name, "F32", std::move(shape), {}};
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

// Header length (8 bytes LE) + header text padded with spaces to a multiple of 8
// (as the reference writer does) + data section.
inline std::vector<uint8_t> safetensors_image(const std::string& header, const std::vector<uint8_t>& data) {
  std::string h = header;
  while (h.size() % 8 != 0) h += ' ';
  std::vector<uint8_t> out(8 + h.size() + data.size());
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(uint64_t(h.size()) >> (8 * i));
  std::copy(h.begin(), h.end(), out.begin() + 8);
  std::copy(data.begin(), data.end(), out.begin() + 8 + std::ptrdiff_t(h.size()));
  return out;
}

// A valid file holding `tensors` packed in the given order.
inline std::vector<uint8_t> safetensors_bytes(const std::vector<StTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::vector<uint8_t> data;
  for (const StTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
  }
  return safetensors_image(header.dump(), data);
}

// Every tensor of a safetensors file, with its bytes copied out (to re-shard or
// mutate a fixture's weights).
inline std::vector<StTensor> read_safetensors(const std::string& path) {
  const std::vector<uint8_t> file = read_file(path);
  size_t data_offset = 0;
  std::vector<StTensor> out;
  for (const SafetensorsEntry& e : parse_safetensors(file.data(), file.size(), path, &data_offset)) {
    StTensor t{e.name, std::string(dtype_name(e.dtype)), e.shape, {}};
    t.bytes.assign(file.begin() + std::ptrdiff_t(data_offset + e.begin), file.begin() + std::ptrdiff_t(data_offset + e.end));
    out.push_back(std::move(t));
  }
  return out;
}

inline StTensor& find_tensor(std::vector<StTensor>& tensors, const std::string& name) {
  for (StTensor& t : tensors)
    if (t.name == name) return t;
  throw std::runtime_error("test fixture has no tensor " + name);
}

// Copies a fixture model folder's config, generation config and tokenizer files
// into `dst` — but no weights, so each test writes the weight files it needs.
inline void copy_model_config(const std::string& src, const std::string& dst) {
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
    const std::filesystem::path from = std::filesystem::path(src) / name;
    if (std::filesystem::exists(from))
      std::filesystem::copy_file(from, std::filesystem::path(dst) / name,
                                 std::filesystem::copy_options::overwrite_existing);
  }
}

inline nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_text(path)); }
inline void write_json(const std::string& path, const nlohmann::json& j) { write_file(path, j.dump(2)); }

// Result of running a command: exit status (or the signal that ended it) and
// the captured streams.
struct CommandResult {
  bool exited = false;  // false: killed by a signal (a crash)
  int exit_code = -1;
  int signal = 0;
  std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `args` (argv, no shell expansion) with stdout / stderr captured to files
// in `scratch`. stdin is /dev/null so a command waiting for input cannot hang.
inline CommandResult run_command(const std::vector<std::string>& args, const TempDir& scratch) {
  std::string cmd;
  for (const std::string& a : args) cmd += shell_quote(a) + " ";
  const std::string out_path = scratch.file("cmd.stdout"), err_path = scratch.file("cmd.stderr");
  cmd += "</dev/null >" + shell_quote(out_path) + " 2>" + shell_quote(err_path);
  // `exec` so the status seen is the command's own, not the shell's: a signal
  // that kills the command is reported as such rather than as 128 + N.
  const int status = std::system(("exec " + cmd).c_str());
  CommandResult r;
  if (WIFEXITED(status)) {
    r.exited = true;
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

inline std::string cli_path() { return UNMASK_CLI_PATH; }
inline bool cli_built() { return std::filesystem::exists(cli_path()); }

// Raw logits of every row of one full forward over `ids` at positions 0..n-1: [n, vocab].
inline std::vector<float> full_forward_logits(const Model& m, const std::vector<int32_t>& ids) {
  ForwardBatch b;
  b.tokens = ids;
  for (int32_t i = 0; i < int32_t(ids.size()); ++i) {
    b.positions.push_back(i);
    b.logit_rows.push_back(i);
  }
  ForwardOutput out;
  forward(m, b, &out);
  return out.logits;
}

}  // namespace unmask::test
