// GGUF container: writer -> reader round trip of every value type and tensor type, and
// the reader's validation on hand-built broken files (each error names the problem).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "test_util.h"
#include "unmask/gguf.h"
#include "unmask/quant.h"

namespace unmask {
namespace {

using test::TempDir;
using test::throws_error;

TEST(GgufFormat, RoundTripsEveryValueAndTensorType) {
  TempDir dir;
  GgufWriter w;
  w.set("a.u8", GgufValue::integer(GgufType::kU8, 200));
  w.set("a.i8", GgufValue::integer(GgufType::kI8, -100));
  w.set("a.u16", GgufValue::integer(GgufType::kU16, 60000));
  w.set("a.i16", GgufValue::integer(GgufType::kI16, -30000));
  w.set("a.u32", GgufValue::u32(4000000000u));
  w.set("a.i32", GgufValue::i32(-2000000000));
  w.set("a.u64", GgufValue::integer(GgufType::kU64, int64_t(1) << 40));
  w.set("a.i64", GgufValue::integer(GgufType::kI64, -(int64_t(1) << 40)));
  w.set("a.f32", GgufValue::f32(0.25f));
  GgufValue f64;
  f64.type = GgufType::kF64;
  f64.f = 1e300;
  w.set("a.f64", f64);
  w.set("a.bool", GgufValue::boolean(true));
  w.set("a.str", GgufValue::string("h\xc3\xa9llo"));
  w.set("a.strs", GgufValue::array(GgufType::kString, {GgufValue::string("x"), GgufValue::string("")}));
  w.set("a.nested", GgufValue::array(GgufType::kArray, {GgufValue::array(GgufType::kI32, {GgufValue::i32(7)})}));
  w.set("a.u32", GgufValue::u32(5));  // replaces the earlier value

  // One tensor per type, odd shapes (rows a multiple of the block size).
  struct T {
    DType type;
    std::vector<int64_t> shape;
  };
  const std::vector<T> specs = {{DType::F32, {3, 5}}, {DType::F16, {7}},          {DType::BF16, {2, 3, 5}},
                                {DType::Q8_0, {3, 64}}, {DType::Q4_0, {5, 32}},     {DType::Q4_K, {3, 256}},
                                {DType::Q6_K, {1, 512}}};
  std::vector<std::vector<uint8_t>> data;
  std::mt19937 rng(3);
  for (size_t i = 0; i < specs.size(); ++i) {
    int64_t numel = 1;
    for (int64_t d : specs[i].shape) numel *= d;
    std::vector<uint8_t>& bytes = data.emplace_back(dtype_row_bytes(specs[i].type, numel));
    for (auto& b : bytes) b = uint8_t(rng());
    w.add_tensor("t" + std::to_string(i), specs[i].type, specs[i].shape, bytes.data());
  }
  w.add_tensor("produced", DType::F32, {4}, [](std::vector<uint8_t>& out) { out.assign(16, 0x3f); });
  size_t progress_calls = 0;
  w.write(dir.file("m.gguf"), [&](size_t done, size_t total) {
    ++progress_calls;
    EXPECT_EQ(total, specs.size() + 1);
    EXPECT_EQ(done, progress_calls);
  });
  EXPECT_EQ(progress_calls, specs.size() + 1);

  ASSERT_TRUE(is_gguf_file(dir.file("m.gguf")));
  EXPECT_FALSE(is_gguf_file(dir.path()));
  const auto g = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(g->header().version, 3u);
  EXPECT_EQ(g->header().data_offset % 32, 0u);
  EXPECT_EQ(g->get_int("a.u8"), 200);
  EXPECT_EQ(g->get_int("a.i8"), -100);
  EXPECT_EQ(g->get_int("a.u16"), 60000);
  EXPECT_EQ(g->get_int("a.i16"), -30000);
  EXPECT_EQ(g->get_int("a.u32"), 5);
  EXPECT_EQ(g->get_int("a.i32"), -2000000000);
  EXPECT_EQ(g->get_int("a.u64"), int64_t(1) << 40);
  EXPECT_EQ(g->get_int("a.i64"), -(int64_t(1) << 40));
  EXPECT_EQ(g->get_float("a.f32", 0), 0.25);
  EXPECT_EQ(g->get_float("a.f64", 0), 1e300);
  EXPECT_TRUE(g->get_bool("a.bool", false));
  EXPECT_EQ(g->get_string("a.str", ""), "h\xc3\xa9llo");
  ASSERT_NE(g->find("a.strs"), nullptr);
  ASSERT_EQ(g->find("a.strs")->items.size(), 2u);
  EXPECT_EQ(g->find("a.strs")->items[0].str, "x");
  EXPECT_EQ(g->find("a.nested")->items[0].items[0].i, 7);
  EXPECT_EQ(g->get_int("absent", -1), -1);
  EXPECT_TRUE(throws_error([&] { g->get_int("absent"); }, {"m.gguf", "missing key 'absent'"}));
  EXPECT_TRUE(throws_error([&] { g->get_int("a.str"); }, {"key 'a.str' is string"}));
  EXPECT_TRUE(throws_error([&] { g->get_bool("a.u8", false); }, {"key 'a.u8'", "expected a bool"}));

  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorView t = g->tensor("t" + std::to_string(i));
    EXPECT_EQ(t.dtype, specs[i].type);
    ASSERT_EQ(t.ndim, int(specs[i].shape.size()));
    for (int d = 0; d < t.ndim; ++d) EXPECT_EQ(t.dim(d), specs[i].shape[size_t(d)]);  // unmask order
    ASSERT_EQ(t.nbytes(), data[i].size());
    EXPECT_EQ(std::memcmp(t.data, data[i].data(), data[i].size()), 0) << "tensor " << i;
    EXPECT_EQ(g->tensor_info("t" + std::to_string(i))->ne[0], specs[i].shape.back());  // ggml order
  }
  EXPECT_EQ(static_cast<const uint8_t*>(g->tensor("produced").data)[15], 0x3f);
  EXPECT_TRUE(throws_error([&] { g->tensor("nope"); }, {"missing tensor 'nope'"}));
}

// Hand-built GGUF images for the validation tests.
class Image {
 public:
  Image& u32(uint32_t v) { return raw(&v, 4); }
  Image& u64(uint64_t v) { return raw(&v, 8); }
  Image& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Image& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  Image& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    raw("GGUF", 4);
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  Image& kv_u32(const std::string& key, uint32_t v) {
    str(key);
    u32(uint32_t(GgufType::kU32));
    return u32(v);
  }
  Image& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name);
    u32(uint32_t(ne.size()));
    for (uint64_t d : ne) u64(d);
    u32(type);
    return u64(offset);
  }
  Image& pad(size_t alignment) {
    while (bytes.size() % alignment) bytes.push_back(0);
    return *this;
  }
  Image& zeros(size_t n) {
    bytes.resize(bytes.size() + n, 0);
    return *this;
  }
  std::vector<uint8_t> bytes;
};

::testing::AssertionResult rejects(const Image& im, std::initializer_list<std::string_view> fragments) {
  return throws_error([&] { parse_gguf(im.bytes.data(), im.bytes.size(), "bad.gguf"); }, fragments);
}

TEST(GgufFormat, ParsesAHandBuiltFileWithCustomAlignment) {
  Image im;
  im.header(2, 1).kv_u32("general.alignment", 64);
  im.tensor("a", {4}, kGgmlF32, 0).tensor("b", {32, 2}, kGgmlQ8_0, 64).pad(64);
  const size_t data_at = im.bytes.size();
  im.zeros(64 + 68);
  const GgufHeader h = parse_gguf(im.bytes.data(), im.bytes.size(), "ok.gguf");
  EXPECT_EQ(h.alignment, 64u);
  EXPECT_EQ(h.data_offset, data_at);
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[1].nbytes, 68u);  // 2 rows x one 34-byte block
  EXPECT_EQ(h.tensors[1].dtype, DType::Q8_0);
}

TEST(GgufFormat, RejectsBrokenFilesWithClearErrors) {
  Image magic;
  magic.raw("GGUX", 4).u32(3).u64(0).u64(0);
  EXPECT_TRUE(rejects(magic, {"bad.gguf", "not a GGUF file"}));
  Image v1;
  v1.header(0, 0, 1);
  EXPECT_TRUE(rejects(v1, {"GGUF version 1 is not supported"}));
  Image truncated;
  truncated.header(0, 1).str("general.name").u32(uint32_t(GgufType::kString)).u64(100).raw("abc", 3);
  EXPECT_TRUE(rejects(truncated, {"truncated", "string value"}));
  Image many_kv;
  many_kv.header(0, uint64_t(1) << 60);
  EXPECT_TRUE(rejects(many_kv, {"key-values cannot fit"}));
  Image dup_key;
  dup_key.header(0, 2).kv_u32("x", 1).kv_u32("x", 2);
  EXPECT_TRUE(rejects(dup_key, {"duplicate key 'x'"}));
  Image bad_type;
  bad_type.header(0, 1).str("x").u32(13).u32(0);
  EXPECT_TRUE(rejects(bad_type, {"key 'x' has unknown value type 13"}));
  Image bad_bool;
  bad_bool.header(0, 1).str("x").u32(uint32_t(GgufType::kBool)).raw("\x02", 1);
  EXPECT_TRUE(rejects(bad_bool, {"bool value 2"}));
  Image huge_array;
  huge_array.header(0, 1).str("x").u32(uint32_t(GgufType::kArray)).u32(uint32_t(GgufType::kU64)).u64(1000).u64(1);
  EXPECT_TRUE(rejects(huge_array, {"key 'x'", "array of 1000 u64 values cannot fit"}));
  Image bad_align;
  bad_align.header(0, 1).kv_u32("general.alignment", 24);
  EXPECT_TRUE(rejects(bad_align, {"general.alignment must be a u32 power of two"}));

  auto with_tensor = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data_bytes) {
    Image im;
    im.header(1, 0).tensor("w", std::move(ne), type, offset).pad(32).zeros(data_bytes);
    return im;
  };
  EXPECT_TRUE(rejects(with_tensor({4}, 3, 0, 32), {"tensor 'w' has ggml type 3, unsupported"}));  // Q4_1
  EXPECT_TRUE(rejects(with_tensor({4, 1, 1, 1, 1}, kGgmlF32, 0, 32), {"tensor 'w' has 5 dims"}));
  EXPECT_TRUE(rejects(with_tensor({4, 0}, kGgmlF32, 0, 32), {"tensor 'w' has dim 0"}));
  EXPECT_TRUE(rejects(with_tensor({48}, kGgmlQ8_0, 0, 64), {"row of 48 values", "Q8_0 blocks of 32"}));
  EXPECT_TRUE(rejects(with_tensor({4}, kGgmlF32, 8, 64), {"offset 8 is not aligned to 32"}));
  EXPECT_TRUE(rejects(with_tensor({8}, kGgmlF32, 32, 32), {"tensor 'w' [32, +32)", "outside the data section of 32 bytes"}));
  EXPECT_TRUE(rejects(with_tensor({16}, kGgmlF32, 0, 32), {"tensor 'w': size exceeds the file"}));
  EXPECT_TRUE(rejects(with_tensor({uint64_t(1) << 40, uint64_t(1) << 40}, kGgmlF32, 0, 32),
                      {"tensor 'w': size exceeds the file"}));
  EXPECT_TRUE(rejects(with_tensor({uint64_t(1) << 63}, kGgmlF32, 0, 32), {"has dim 9223372036854775808"}));

  Image dup_tensor;
  dup_tensor.header(2, 0).tensor("w", {4}, kGgmlF32, 0).tensor("w", {4}, kGgmlF32, 32).pad(32).zeros(64);
  EXPECT_TRUE(rejects(dup_tensor, {"duplicate tensor 'w'"}));
  Image overlap;
  overlap.header(2, 0).tensor("a", {16}, kGgmlF32, 0).tensor("b", {4}, kGgmlF32, 32).pad(32).zeros(64);
  EXPECT_TRUE(rejects(overlap, {"tensors 'a' and 'b' overlap"}));
}

TEST(GgufFormat, WriterRejectsPartialBlocksAndMixedArrays) {
  GgufWriter w;
  std::vector<uint8_t> bytes(1024);
  EXPECT_TRUE(throws_error([&] { w.add_tensor("q", DType::Q4_K, {2, 128}, bytes.data()); },
                           {"tensor 'q'", "not whole Q4_K blocks"}));
  TempDir dir;
  GgufWriter mixed;
  mixed.set("m", GgufValue::array(GgufType::kI32, {GgufValue::i32(1), GgufValue::string("x")}));
  EXPECT_TRUE(throws_error([&] { mixed.write(dir.file("m.gguf")); }, {"key 'm' mixes string"}));
}

}  // namespace
}  // namespace unmask
