// The safetensors reader on valid and broken inputs: header parsing
// (parse_safetensors) byte by byte, then TensorStore over single files, folders
// and sharded indexes. Every broken input must give one unmask::Error line that
// names the file and the fault.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "unmask/error.h"
#include "unmask/safetensors.h"

namespace unmask {
namespace {

using test::safetensors_bytes;
using test::safetensors_image;
using test::StTensor;
using test::TempDir;
using test::throws_error;

std::vector<SafetensorsEntry> parse(const std::vector<uint8_t>& bytes, size_t* data_offset = nullptr) {
  return parse_safetensors(bytes.data(), bytes.size(), "w.safetensors", data_offset);
}

// A header with one tensor entry `body` and a data section of `data_bytes` zero bytes.
std::vector<uint8_t> one_entry(const std::string& body, size_t data_bytes) {
  return safetensors_image(R"({"t":)" + body + "}", std::vector<uint8_t>(data_bytes, 0));
}

std::vector<uint8_t> image_with_length(uint64_t header_len, size_t total_size) {
  std::vector<uint8_t> b(total_size, ' ');
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(header_len >> (8 * i));
  return b;
}

TEST(SafetensorsParse, ValidFileGivesEntriesInOrderOfName) {
  const std::vector<uint8_t> file = safetensors_bytes(
      {test::f32_tensor("w", {2, 3}, {1, 2, 3, 4, 5, 6}), StTensor{"b", "BF16", {3}, std::vector<uint8_t>(6, 1)},
       StTensor{"scalar", "I64", {}, std::vector<uint8_t>(8, 2)}});
  size_t data_offset = 0;
  const auto entries = parse(file, &data_offset);
  ASSERT_EQ(entries.size(), 3u);  // __metadata__ is not a tensor
  // nlohmann::json orders keys by name.
  EXPECT_EQ(entries[0].name, "b");
  EXPECT_EQ(entries[0].dtype, DType::BF16);
  EXPECT_EQ(entries[0].shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(entries[0].begin, 24u);
  EXPECT_EQ(entries[0].end, 30u);
  EXPECT_EQ(entries[1].name, "scalar");
  EXPECT_TRUE(entries[1].shape.empty());
  EXPECT_EQ(entries[1].end - entries[1].begin, 8u);
  EXPECT_EQ(entries[2].name, "w");
  EXPECT_EQ(entries[2].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(data_offset % 8, 0u);
  float first = 0;
  std::memcpy(&first, file.data() + data_offset + entries[2].begin, 4);
  EXPECT_EQ(first, 1.0f);
}

TEST(SafetensorsParse, EmptyHeaderObjectHasNoTensors) {
  EXPECT_TRUE(parse(safetensors_image("{}", {})).empty());
  EXPECT_TRUE(parse(safetensors_image(R"({"__metadata__":{"format":"pt"}})", {})).empty());
}

TEST(SafetensorsParse, ZeroSizedTensorsAreValid) {
  const auto entries = parse(one_entry(R"({"dtype":"F32","shape":[0,5],"data_offsets":[0,0]})", 0));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].shape, (std::vector<int64_t>{0, 5}));
}

TEST(SafetensorsParse, FileShorterThanLengthPrefix) {
  EXPECT_TRUE(throws_error([] { parse({}); }, {"w.safetensors", "truncated", "0 bytes"}));
  EXPECT_TRUE(throws_error([] { parse(std::vector<uint8_t>(7, 0)); }, {"w.safetensors", "truncated", "7 bytes"}));
}

TEST(SafetensorsParse, HeaderLengthBeyondFile) {
  EXPECT_TRUE(throws_error([] { parse(image_with_length(1000, 40)); },
                           {"w.safetensors", "header length 1000", "exceeds file size 40"}));
  // The largest length must not wrap around in 8 + length.
  EXPECT_TRUE(throws_error([] { parse(image_with_length(std::numeric_limits<uint64_t>::max(), 16)); },
                           {"w.safetensors", "header length 18446744073709551615", "exceeds file size 16"}));
}

TEST(SafetensorsParse, MalformedHeaderJson) {
  EXPECT_TRUE(throws_error([] { parse(safetensors_image(R"({"t": {"dtype": )", {})); },
                           {"w.safetensors", "malformed safetensors header JSON"}));
  EXPECT_TRUE(throws_error([] { parse(image_with_length(0, 8)); }, {"w.safetensors", "malformed safetensors header JSON"}));
  EXPECT_TRUE(throws_error([] { parse(safetensors_image("[1, 2]", {})); }, {"w.safetensors", "not a JSON object"}));
  EXPECT_TRUE(throws_error([] { parse(safetensors_image(R"({"t": 5})", {})); },
                           {"w.safetensors", "tensor 't'", "not an object"}));
}

TEST(SafetensorsParse, UnknownOrMissingDtype) {
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]})", 4)); },
                           {"w.safetensors", "tensor 't'", "unsupported dtype F8_E4M3"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":7,"shape":[1],"data_offsets":[0,4]})", 4)); },
                           {"tensor 't'", "missing dtype"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"shape":[1],"data_offsets":[0,4]})", 4)); },
                           {"tensor 't'", "missing dtype"}));
}

TEST(SafetensorsParse, BadShapes) {
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","data_offsets":[0,4]})", 4)); },
                           {"tensor 't'", "missing shape"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", 4)); },
                           {"tensor 't'", "bad shape entry -1"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", 4)); },
                           {"tensor 't'", "bad shape entry 1.5"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]})", 4)); },
                           {"tensor 't'", "more than 4 dimensions"}));
  EXPECT_TRUE(throws_error(
      [] { parse(one_entry(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]})", 4)); },
      {"tensor 't'", "shape too large"}));
}

TEST(SafetensorsParse, DeeplyNestedShapeEntryDoesNotExhaustTheStack) {
  // Printing the offending value whole would recurse once per nesting level.
  const size_t depth = 200000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_TRUE(throws_error([&] { parse(one_entry(R"({"dtype":"F32","shape":[)" + nested + R"(],"data_offsets":[0,4]})", 4)); },
                           {"tensor 't'", "bad shape entry (array)"}));
}

TEST(SafetensorsParse, ShapeWhoseByteSizeOverflowsIsRejected) {
  // 2^62 elements pass the element-count limit, but x 8 bytes wraps to 0 in 64 bits:
  // the empty span [0, 0] must not be taken as matching.
  EXPECT_TRUE(throws_error(
      [] { parse(one_entry(R"({"dtype":"I64","shape":[4611686018427387904],"data_offsets":[0,0]})", 0)); },
      {"w.safetensors", "tensor 't'", "data section"}));
}

TEST(SafetensorsParse, BadDataOffsets) {
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[1]})", 4)); },
                           {"tensor 't'", "data_offsets must be two non-negative integers"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})", 4)); },
                           {"tensor 't'", "data_offsets must be two non-negative integers"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", 4)); },
                           {"tensor 't'", "data_offsets must be two non-negative integers"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":["0","4"]})", 4)); },
                           {"tensor 't'", "data_offsets must be two non-negative integers"}));
}

TEST(SafetensorsParse, OffsetsOutsideDataSection) {
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[2],"data_offsets":[4,12]})", 8)); },
                           {"w.safetensors", "tensor 't'", "data_offsets [4, 12]", "outside the data section of 8 bytes"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", 8)); },
                           {"tensor 't'", "data_offsets [8, 4]"}));
  EXPECT_TRUE(throws_error(
      [] { parse(one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]})", 8)); },
      {"tensor 't'", "outside the data section"}));
}

TEST(SafetensorsParse, SpanDiffersFromShapeTimesDtype) {
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})", 24)); },
                           {"w.safetensors", "tensor 't'", "byte span 20 != shape x dtype size 24"}));
  EXPECT_TRUE(throws_error([] { parse(one_entry(R"({"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]})", 24)); },
                           {"tensor 't'", "byte span 24 != shape x dtype size 12"}));
}

TEST(SafetensorsParse, OverlappingTensors) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  EXPECT_TRUE(throws_error([&] { parse(safetensors_image(header, std::vector<uint8_t>(24))); },
                           {"w.safetensors", "tensors 'a' and 'b' overlap"}));
  // The same span twice is an overlap too.
  const std::string twice =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_TRUE(throws_error([&] { parse(safetensors_image(twice, std::vector<uint8_t>(8))); }, {"'a' and 'b' overlap"}));
  // Adjacent spans are fine.
  const std::string adjacent =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  EXPECT_EQ(parse(safetensors_image(adjacent, std::vector<uint8_t>(16))).size(), 2u);
}

// ---- TensorStore over files and folders ------------------------------------------

TEST(TensorStore, SingleFileViewsPointAtTheData) {
  TempDir dir;
  test::write_file(dir.file("model.safetensors"),
                   safetensors_bytes({test::f32_tensor("x", {2, 2}, {1.5f, -2, 3, 4}),
                                      StTensor{"h", "BF16", {2}, {0x80, 0x3f, 0x00, 0xc0}}}));
  for (const std::string& path : {dir.path(), dir.file("model.safetensors")}) {
    auto store = TensorStore::open(path);
    ASSERT_TRUE(store->has("x"));
    const TensorView x = store->get("x");
    EXPECT_EQ(x.ndim, 2);
    EXPECT_EQ(shape_string(x), "[2, 2]");
    EXPECT_EQ(x.f32()[0], 1.5f);
    EXPECT_EQ(x.f32()[3], 4.0f);
    const TensorView h = store->get("h");
    EXPECT_EQ(load_as_f32(h, 0), 1.0f);   // bf16 0x3f80
    EXPECT_EQ(load_as_f32(h, 1), -2.0f);  // bf16 0xc000
    EXPECT_EQ(store->total_bytes(), 20u);
    EXPECT_TRUE(throws_error([&] { store->get("y"); }, {"model.safetensors", "missing tensor 'y'"}));
  }
}

TEST(TensorStore, FolderWithOneOtherlyNamedFile) {
  TempDir dir;
  test::write_file(dir.file("weights.safetensors"), safetensors_bytes({test::f32_tensor("x", {1}, {7})}));
  auto store = TensorStore::open(dir.path());
  EXPECT_EQ(store->get("x").f32()[0], 7.0f);
  EXPECT_NE(store->description().find("weights.safetensors"), std::string::npos);
}

TEST(TensorStore, MissingOrAmbiguousFiles) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { TensorStore::open(dir.file("absent")); },
                           {"absent", "no such model folder or safetensors file"}));
  EXPECT_TRUE(throws_error([&] { TensorStore::open(dir.path()); }, {"no model.safetensors and no *.safetensors file"}));
  test::write_file(dir.file("a.safetensors"), safetensors_bytes({}));
  test::write_file(dir.file("b.safetensors"), safetensors_bytes({}));
  EXPECT_TRUE(throws_error([&] { TensorStore::open(dir.path()); }, {"several *.safetensors files"}));
}

TEST(TensorStore, EmptyAndTruncatedFiles) {
  TempDir dir;
  test::write_file(dir.file("model.safetensors"), std::string());
  EXPECT_TRUE(throws_error([&] { TensorStore::open(dir.path()); }, {"model.safetensors", "truncated", "0 bytes"}));
  std::vector<uint8_t> good = safetensors_bytes({test::f32_tensor("x", {4}, {1, 2, 3, 4})});
  good.resize(good.size() - 4);  // cut into the data section
  test::write_file(dir.file("model.safetensors"), good);
  EXPECT_TRUE(throws_error([&] { TensorStore::open(dir.path()); },
                           {"model.safetensors", "tensor 'x'", "outside the data section of 12 bytes"}));
}

// ---- sharded checkpoints (model.safetensors.index.json) ----------------------------

struct ShardedFolder {
  TempDir dir;
  ShardedFolder() {
    test::write_file(dir.file("s1.safetensors"), safetensors_bytes({test::f32_tensor("a", {1}, {1}), test::f32_tensor("b", {1}, {2})}));
    test::write_file(dir.file("s2.safetensors"), safetensors_bytes({test::f32_tensor("c", {2}, {3, 4})}));
  }
  void write_index(const nlohmann::json& weight_map) const {
    test::write_json(dir.file("model.safetensors.index.json"), {{"metadata", {{"total_size", 16}}}, {"weight_map", weight_map}});
  }
};

TEST(TensorStoreSharded, LoadsEveryShard) {
  ShardedFolder f;
  f.write_index({{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"c", "s2.safetensors"}});
  auto store = TensorStore::open(f.dir.path());
  EXPECT_EQ(store->get("a").f32()[0], 1.0f);
  EXPECT_EQ(store->get("c").f32()[1], 4.0f);
  EXPECT_EQ(store->file_of("c"), f.dir.file("s2.safetensors"));
  EXPECT_NE(store->description().find("2 shards"), std::string::npos);
}

TEST(TensorStoreSharded, MissingShard) {
  ShardedFolder f;
  f.write_index({{"a", "s1.safetensors"}, {"c", "s3.safetensors"}});
  EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); }, {"s3.safetensors", "cannot open"}));
}

TEST(TensorStoreSharded, TensorNotInItsShard) {
  ShardedFolder f;
  f.write_index({{"a", "s1.safetensors"}, {"c", "s1.safetensors"}});
  EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); },
                           {"model.safetensors.index.json", "tensor 'c'", "not in its shard s1.safetensors"}));
  // Present, but in another listed shard than the index says.
  f.write_index({{"a", "s2.safetensors"}, {"b", "s1.safetensors"}, {"c", "s2.safetensors"}});
  EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); },
                           {"model.safetensors.index.json", "tensor 'a'", "index says s2.safetensors"}));
}

TEST(TensorStoreSharded, ShardNameMustStayInTheFolder) {
  ShardedFolder f;
  for (const char* evil : {"../s1.safetensors", "/etc/passwd", "..", "sub/s1.safetensors"}) {
    f.write_index({{"a", evil}});
    EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); },
                             {"model.safetensors.index.json", std::string("shard name '") + evil + "'", "plain file name"}))
        << evil;
  }
}

TEST(TensorStoreSharded, MalformedIndex) {
  ShardedFolder f;
  const std::string index = f.dir.file("model.safetensors.index.json");
  test::write_file(index, std::string("{\"weight_map\": {"));
  EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); }, {"model.safetensors.index.json", "malformed JSON"}));
  test::write_file(index, std::string());
  EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); }, {"model.safetensors.index.json", "malformed JSON"}));
  test::write_file(index, std::string(R"({"metadata": {}})"));
  EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); }, {"model.safetensors.index.json", "'weight_map'"}));
  test::write_file(index, std::string("[1, 2]"));
  EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); }, {"model.safetensors.index.json", "'weight_map'"}));
  f.write_index({{"a", 3}});
  EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); },
                           {"model.safetensors.index.json", "weight_map['a']", "not a file name"}));
}

TEST(TensorStoreSharded, TensorInTwoShards) {
  ShardedFolder f;
  test::write_file(f.dir.file("s2.safetensors"), safetensors_bytes({test::f32_tensor("a", {1}, {9})}));
  f.write_index({{"a", "s1.safetensors"}, {"b", "s2.safetensors"}});
  EXPECT_TRUE(throws_error([&] { TensorStore::open(f.dir.path()); }, {"tensor 'a' also appears in"}));
}

}  // namespace
}  // namespace unmask
