#include "unmask/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "unmask/error.h"

namespace unmask {

namespace fs = std::filesystem;
using nlohmann::json;

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever;
  // it has no effect on the regular files we accept.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error(path + ": mmap failed: " + std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

namespace {

// A JSON value for an error message: scalars as written, containers by type only,
// since dumping a hostile, deeply nested value would recurse without bound.
std::string brief(const json& v) { return v.is_structured() ? std::string("(") + v.type_name() + ")" : v.dump(); }

}  // namespace

std::vector<SafetensorsEntry> parse_safetensors(const uint8_t* bytes, size_t size,
                                                const std::string& label,
                                                size_t* data_offset_out) {
  if (size < 8) throw Error(label + ": truncated safetensors file (" + std::to_string(size) + " bytes, need at least 8)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > size - 8)
    throw Error(label + ": safetensors header length " + std::to_string(header_len) +
                " exceeds file size " + std::to_string(size));
  const size_t data_offset = 8 + size_t(header_len);
  const uint64_t data_size = size - data_offset;
  json header;
  try {
    header = json::parse(bytes + 8, bytes + data_offset);
  } catch (const json::exception& e) {
    throw Error(label + ": malformed safetensors header JSON: " + e.what());
  }
  if (!header.is_object()) throw Error(label + ": safetensors header is not a JSON object");

  std::vector<SafetensorsEntry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string where = label + ": tensor '" + it.key() + "'";
    const json& v = it.value();
    if (!v.is_object()) throw Error(where + ": entry is not an object");
    SafetensorsEntry e;
    e.name = it.key();
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) throw Error(where + ": missing dtype");
    if (!dtype_from_name(dt->get<std::string>(), &e.dtype))
      throw Error(where + ": unsupported dtype " + dt->get<std::string>());
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) throw Error(where + ": missing shape");
    if (sh->size() > size_t(kMaxDims)) throw Error(where + ": more than 4 dimensions");
    uint64_t numel = 1;
    for (const json& d : *sh) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) throw Error(where + ": bad shape entry " + brief(d));
      const uint64_t n = d.get<uint64_t>();
      if (n != 0 && numel > (uint64_t(1) << 62) / n) throw Error(where + ": shape too large");
      numel *= n;
      e.shape.push_back(int64_t(n));
    }
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      throw Error(where + ": data_offsets must be two non-negative integers");
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size)
      throw Error(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                  "] outside the data section of " + std::to_string(data_size) + " bytes");
    // Checked before multiplying: numel * dtype size can exceed 64 bits and wrap
    // around to a small number that matches a forged span.
    if (numel > data_size / dtype_size(e.dtype))
      throw Error(where + ": shape needs " + std::to_string(numel) + " x " + std::to_string(dtype_size(e.dtype)) +
                  " bytes, more than the data section of " + std::to_string(data_size) + " bytes");
    const uint64_t expect = numel * dtype_size(e.dtype);
    if (e.end - e.begin != expect)
      throw Error(where + ": byte span " + std::to_string(e.end - e.begin) + " != shape x dtype size " +
                  std::to_string(expect));
    entries.push_back(std::move(e));
  }
  std::vector<const SafetensorsEntry*> by_offset;
  for (auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      throw Error(label + ": tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                  "' overlap in the data section");
  if (data_offset_out) *data_offset_out = data_offset;
  return entries;
}

void TensorStore::add_file(const std::string& path) {
  auto file = std::make_unique<MappedFile>(path);
  size_t data_offset = 0;
  auto entries = parse_safetensors(file->data(), file->size(), path, &data_offset);
  const size_t index = files_.size();
  for (auto& e : entries) {
    if (views_.count(e.name)) throw Error(path + ": tensor '" + e.name + "' also appears in " + file_of(e.name));
    TensorView v;
    v.data = file->data() + data_offset + e.begin;
    v.dtype = e.dtype;
    v.ndim = int(e.shape.size());
    for (size_t i = 0; i < e.shape.size(); ++i) v.shape[i] = e.shape[i];
    views_[e.name] = v;
    file_index_[e.name] = index;
  }
  files_.push_back(std::move(file));
}

std::shared_ptr<TensorStore> TensorStore::open(const std::string& path) {
  auto store = std::make_shared<TensorStore>();
  fs::path p(path);
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) {
    store->add_file(p.string());
    store->description_ = p.string();
    return store;
  }
  if (!fs::is_directory(p, ec)) throw Error(path + ": no such model folder or safetensors file");
  const fs::path index = p / "model.safetensors.index.json";
  if (fs::exists(index)) {
    json j;
    try {
      MappedFile f(index.string());
      j = json::parse(f.data(), f.data() + f.size());
    } catch (const json::exception& e) {
      throw Error(index.string() + ": malformed JSON: " + e.what());
    }
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object()) throw Error(index.string() + ": missing object 'weight_map'");
    std::set<std::string> shards;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string()) throw Error(index.string() + ": weight_map['" + it.key() + "'] is not a file name");
      const std::string shard = it->get<std::string>();
      if (shard.find('/') != std::string::npos || shard == ".." )
        throw Error(index.string() + ": shard name '" + shard + "' must be a plain file name");
      shards.insert(shard);
    }
    for (const auto& s : shards) store->add_file((p / s).string());
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!store->has(it.key()))
        throw Error(index.string() + ": tensor '" + it.key() + "' is not in its shard " + it->get<std::string>());
      if (store->file_of(it.key()) != (p / it->get<std::string>()).string())
        throw Error(index.string() + ": tensor '" + it.key() + "' found in " + store->file_of(it.key()) +
                    ", index says " + it->get<std::string>());
    }
    store->description_ = index.string() + " (" + std::to_string(shards.size()) + " shards)";
    return store;
  }
  fs::path single = p / "model.safetensors";
  if (!fs::exists(single)) {
    std::vector<fs::path> found;
    for (auto& de : fs::directory_iterator(p, ec))
      if (de.path().extension() == ".safetensors") found.push_back(de.path());
    if (found.size() != 1)
      throw Error(path + ": no model.safetensors" +
                  (found.empty() ? std::string(" and no *.safetensors file")
                                 : std::string(" and several *.safetensors files; name one")));
    single = found[0];
  }
  store->add_file(single.string());
  store->description_ = single.string();
  return store;
}

TensorView TensorStore::get(const std::string& name) const {
  auto it = views_.find(name);
  if (it == views_.end()) throw Error(description_ + ": missing tensor '" + name + "'");
  return it->second;
}

std::string TensorStore::file_of(const std::string& name) const {
  auto it = file_index_.find(name);
  return it == file_index_.end() ? description_ : files_[it->second]->path();
}

size_t TensorStore::total_bytes() const {
  size_t n = 0;
  for (auto& [_, v] : views_) n += v.nbytes();
  return n;
}

}  // namespace unmask
