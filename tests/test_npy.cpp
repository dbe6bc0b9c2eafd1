// .npy reader/writer: round trips, numpy's header variants, and malformed files.
#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"
#include "unmask/npy.h"

namespace unmask {
namespace {

using test::throws_error;

// A .npy image with the given version and raw header text (padded with spaces and
// '\n' to a 64-byte boundary unless `raw`), followed by `payload`.
std::vector<uint8_t> npy_image(const std::string& header, const std::vector<uint8_t>& payload, int major = 1,
                               bool raw = false) {
  const size_t pre = major == 1 ? 10 : 12;
  std::string h = header;
  if (!raw) {
    while ((pre + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
  }
  std::vector<uint8_t> out{0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(major), 0};
  for (size_t b = 0; b < pre - 8; ++b) out.push_back(uint8_t(h.size() >> (8 * b)));
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<uint8_t> bytes_of(const std::vector<int64_t>& v) {
  std::vector<uint8_t> b(v.size() * 8);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

TEST(Npy, RoundTripsEveryDtypeAndRank) {
  test::TempDir tmp;
  const NpyArray f = npy_from_f32({1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f}, {2, 3});
  write_npy(tmp.file("f.npy"), f);
  const NpyArray f2 = read_npy(tmp.file("f.npy"));
  EXPECT_EQ(f2.dtype, NpyDType::kF32);
  EXPECT_EQ(f2.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f2.to_f32(), f.to_f32());
  const NpyArray i = npy_from_i64({5, -1, int64_t(1) << 40}, {3});
  write_npy(tmp.file("i.npy"), i);
  EXPECT_EQ(read_npy(tmp.file("i.npy")).to_i64(), (std::vector<int64_t>{5, -1, int64_t(1) << 40}));
  const NpyArray j = npy_from_i32({7, -8}, {1, 2});
  write_npy(tmp.file("j.npy"), j);
  EXPECT_EQ(read_npy(tmp.file("j.npy")).to_i64(), (std::vector<int64_t>{7, -8}));  // widened
  const NpyArray scalar = npy_from_f32({4.0f}, {});
  EXPECT_EQ(parse_npy(serialize_npy(scalar).data(), serialize_npy(scalar).size(), "s").numel(), 1);
  const NpyArray empty = npy_from_f32({}, {0, 4});
  const auto eb = serialize_npy(empty);
  EXPECT_EQ(parse_npy(eb.data(), eb.size(), "e").shape, (std::vector<int64_t>{0, 4}));
  EXPECT_THROW(npy_from_f32({1.0f, 2.0f}, {3}), Error);
}

TEST(Npy, WritesNumpyLayout) {
  const auto b = serialize_npy(npy_from_i64({1, 2, 3}, {3}));
  ASSERT_GE(b.size(), 64u + 24u);
  EXPECT_EQ(std::memcmp(b.data(), "\x93NUMPY\x01\x00", 8), 0);
  const size_t hl = size_t(b[8]) | size_t(b[9]) << 8;
  EXPECT_EQ((10 + hl) % 64, 0u);  // data aligned to 64 bytes
  const std::string header(b.begin() + 10, b.begin() + 10 + std::ptrdiff_t(hl));
  EXPECT_EQ(header.back(), '\n');
  EXPECT_NE(header.find("'descr': '<i8'"), std::string::npos);
  EXPECT_NE(header.find("'shape': (3,)"), std::string::npos);  // Python one-tuple
  EXPECT_EQ(b.size(), 10 + hl + 24);
}

TEST(Npy, ReadsHeaderVariants) {
  // Other key order, double quotes, no trailing comma, version 2.0.
  const auto a = npy_image("{\"shape\": (2, 2), 'fortran_order': False, 'descr': '<i8'}", bytes_of({1, 2, 3, 4}), 2);
  const NpyArray x = parse_npy(a.data(), a.size(), "v2");
  EXPECT_EQ(x.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(x.to_i64()[3], 4);
  // Unpadded header (older writers), 0-d shape.
  const auto s = npy_image("{'descr': '<i8', 'fortran_order': False, 'shape': ()}", bytes_of({9}), 1, true);
  EXPECT_EQ(parse_npy(s.data(), s.size(), "v1").to_i64(), (std::vector<int64_t>{9}));
}

TEST(Npy, ReadsTheFixtures) {
  const NpyArray ids = read_npy(test::llada_dir() + "/forward/chat_plus_12_masks.input_ids.npy");
  EXPECT_EQ(ids.dtype, NpyDType::kI64);
  EXPECT_EQ(ids.shape, (std::vector<int64_t>{35}));
  EXPECT_EQ(ids.to_i64()[0], 500);  // <|startoftext|>
  const NpyArray logits = read_npy(test::llada_dir() + "/forward/chat_plus_12_masks.logits.f32.npy");
  EXPECT_EQ(logits.shape, (std::vector<int64_t>{35, 512}));
  EXPECT_THROW(logits.to_i64(), Error);
  EXPECT_THROW(ids.to_f32(), Error);
}

TEST(Npy, RejectsMalformedFiles) {
  const std::string ok = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
  const auto payload = bytes_of({1, 2});
  auto parse = [](const std::vector<uint8_t>& b) { return parse_npy(b.data(), b.size(), "x.npy"); };
  EXPECT_NO_THROW(parse(npy_image(ok, payload)));
  auto bad_magic = npy_image(ok, payload);
  bad_magic[1] = 'M';
  EXPECT_TRUE(throws_error([&] { parse(bad_magic); }, {"x.npy", "magic"}));
  EXPECT_TRUE(throws_error([&] { parse(npy_image(ok, payload, 3)); }, {"version 3.0"}));
  EXPECT_TRUE(throws_error([&] { parse({0x93, 'N', 'U', 'M', 'P'}); }, {"magic"}));
  auto long_header = npy_image(ok, payload);
  long_header[9] = 0x7f;  // header length beyond the file
  EXPECT_TRUE(throws_error([&] { parse(long_header); }, {"header length"}));
  EXPECT_TRUE(throws_error([&] { parse(npy_image(ok, bytes_of({1}))); }, {"[2]", "payload is 8 bytes"}));
  EXPECT_TRUE(throws_error([&] { parse(npy_image(ok, bytes_of({1, 2, 3}))); }, {"payload is 24 bytes"}));
  EXPECT_TRUE(throws_error([&] { parse(npy_image("{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", payload)); },
                           {"unsupported .npy dtype '<f8'"}));
  EXPECT_TRUE(throws_error([&] { parse(npy_image("{'descr': '>i8', 'fortran_order': False, 'shape': (2,)}", payload)); },
                           {"'>i8'"}));
  EXPECT_TRUE(throws_error([&] { parse(npy_image("{'descr': '<i8', 'fortran_order': True, 'shape': (2,)}", payload)); },
                           {"Fortran"}));
  EXPECT_TRUE(throws_error([&] { parse(npy_image("{'descr': '<i8', 'shape': (2,)}", payload)); }, {"fortran_order"}));
  EXPECT_TRUE(throws_error(
      [&] { parse(npy_image("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), 'x': 1}", payload)); },
      {"malformed"}));
  EXPECT_TRUE(throws_error(
      [&] { parse(npy_image("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), 'x': 'y'}", payload)); },
      {"other"}));
  EXPECT_TRUE(throws_error([&] { parse(npy_image("{'descr': '<i8, 'fortran_order': False}", payload)); }, {"malformed"}));
  EXPECT_TRUE(throws_error([&] { parse(npy_image("{'descr': '<i8', 'fortran_order': False, 'shape': (-2,)}", payload)); },
                           {"malformed"}));
  EXPECT_TRUE(throws_error(
      [&] { parse(npy_image("{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999, 99999999999)}", payload)); },
      {"overflows"}));
  EXPECT_TRUE(throws_error([&] { read_npy("/nonexistent/a.npy"); }, {"/nonexistent/a.npy", "cannot open"}));
}

}  // namespace
}  // namespace unmask
