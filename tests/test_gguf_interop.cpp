// Interop with llama.cpp itself (tests/data/gguf-interop, README there says how each file
// was made): blocks written by llama.cpp's llama-quantize dequantize in unmask to exactly
// the f32 values llama.cpp's own dequantization gives, and unmask's F16 / BF16 rounding
// equals llama-quantize's bit for bit.
//
// The source file is an F32 GGUF written by unmask's GgufWriter (make_interop_source
// below, deterministic); llama-quantize --pure turned it into one file per block type,
// and llama-quantize --allow-requantize turned each of those back into F32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"
#include "unmask/gguf.h"
#include "unmask/quant.h"

namespace unmask {
namespace {

using test::TempDir;

std::string interop_dir() { return test::data_dir() + "/gguf-interop"; }

// Tensor shapes of the source, unmask order [rows, k]: k is whole Q4_K / Q6_K super-blocks
// (256) so llama-quantize keeps every requested type; odd row counts. The names are ones
// llama-quantize quantizes (2-D, "*.weight", not a norm); it also requires exactly one
// attn_v per layer of the one-layer `llada` header.
struct SourceTensor {
  const char* name;
  int64_t rows, k;
};
constexpr SourceTensor kSourceTensors[] = {
    {"token_embd.weight", 5, 256},    {"blk.0.attn_q.weight", 3, 512},    {"blk.0.attn_v.weight", 7, 256},
    {"blk.0.ffn_down.weight", 3, 768}, {"output.weight", 5, 256},
};

// Row r of a source tensor, by pattern r % 7, each aimed at a quantizer branch:
// 0 signed uniform (typical weights); 1 all positive with an offset (Q4_K's min, Q4_0's
// sign of the extreme); 2 small values with an outlier every 37th (scale set by one value);
// 3 the first 64 values zero (all-zero Q8_0 / Q4_0 blocks, a zero Q6_K sub-block);
// 4 magnitude ~1000; 5 magnitude ~1e-4 (block scales below the f16 normal range:
// subnormal halves); 6 all negative. Uniforms come from mt19937's raw output, which the
// standard fixes, so the file is the same with every standard library.
std::vector<float> source_row(std::mt19937& rng, int64_t r, int64_t k) {
  const auto uniform = [&rng] { return float(rng() >> 8) * (1.0f / 16777216.0f); };  // [0, 1)
  std::vector<float> row(size_t(k), 0.0f);
  for (int64_t j = 0; j < k; ++j) {
    const float u = uniform(), s = 2 * u - 1;
    float& v = row[size_t(j)];
    switch (r % 7) {
      case 0: v = 0.05f * s; break;
      case 1: v = 0.5f + u; break;
      case 2: v = (j % 37 == 0 ? 20.0f : 1.0f) * 0.01f * s; break;
      case 3: v = j < 64 ? 0.0f : s; break;
      case 4: v = 1000.0f * s; break;
      case 5: v = 1e-4f * s; break;
      default: v = -0.1f - 0.2f * u; break;
    }
  }
  return row;
}

// The source GGUF: a one-layer `llada` header (what llama-quantize reads to accept the
// file) and the tensors above in F32.
void make_interop_source(const std::string& path) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llada"));
  w.set("general.name", GgufValue::string("unmask-gguf-interop"));
  w.set("llada.context_length", GgufValue::u32(128));
  w.set("llada.embedding_length", GgufValue::u32(256));
  w.set("llada.block_count", GgufValue::u32(1));
  w.set("llada.feed_forward_length", GgufValue::u32(768));
  w.set("llada.attention.head_count", GgufValue::u32(2));
  w.set("llada.attention.head_count_kv", GgufValue::u32(2));
  w.set("llada.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  w.set("llada.rope.freq_base", GgufValue::f32(500000.0f));
  std::mt19937 rng(20240607);
  std::vector<std::vector<float>> data;
  for (const SourceTensor& t : kSourceTensors) {
    std::vector<float>& values = data.emplace_back();
    for (int64_t r = 0; r < t.rows; ++r) {
      const std::vector<float> row = source_row(rng, r, t.k);
      values.insert(values.end(), row.begin(), row.end());
    }
    w.add_tensor(t.name, DType::F32, {t.rows, t.k}, values.data());
  }
  w.write(path);
}

// The committed source is exactly what the generator writes (so the README's recipe
// reproduces it). UNMASK_WRITE_INTEROP_SOURCE=PATH also writes it there, to remake it.
TEST(GgufInterop, SourceIsWhatTheGeneratorWrites) {
  TempDir tmp;
  make_interop_source(tmp.file("source-f32.gguf"));
  if (const char* out = std::getenv("UNMASK_WRITE_INTEROP_SOURCE")) make_interop_source(out);
  EXPECT_EQ(test::read_file(tmp.file("source-f32.gguf")), test::read_file(interop_dir() + "/source-f32.gguf"));
}

struct QuantizedFile {
  const char* stem;  // <stem>.gguf by llama-quantize, <stem>-f32.gguf back to F32 by it
  DType type;
};
constexpr QuantizedFile kQuantized[] = {
    {"llama-q8_0", DType::Q8_0}, {"llama-q4_0", DType::Q4_0}, {"llama-q4_k", DType::Q4_K}, {"llama-q6_k", DType::Q6_K}};

// Every tensor of llama.cpp's quantized file has the requested type and the source's
// shape, and unmask's scalar dequantize gives llama.cpp's f32 values bit for bit (the
// formulas multiply in the same order, and neither side fuses into FMA here).
TEST(GgufInterop, LlamaQuantizedBlocksDequantizeToLlamaValuesExactly) {
  for (const QuantizedFile& q : kQuantized) {
    SCOPED_TRACE(q.stem);
    const auto quantized = GgufFile::open(interop_dir() + "/" + q.stem + ".gguf");
    const auto expected = GgufFile::open(interop_dir() + "/" + q.stem + "-f32.gguf");
    for (const SourceTensor& t : kSourceTensors) {
      SCOPED_TRACE(t.name);
      const TensorView qv = quantized->tensor(t.name), ev = expected->tensor(t.name);
      ASSERT_EQ(qv.dtype, q.type);
      ASSERT_EQ(ev.dtype, DType::F32);
      ASSERT_EQ(qv.dim(0), t.rows);
      ASSERT_EQ(qv.dim(1), t.k);
      ASSERT_EQ(ev.dim(0), t.rows);
      std::vector<float> got(size_t(t.k)), want(size_t(t.k));
      size_t differing = 0, nonzero = 0;
      for (int64_t r = 0; r < t.rows; ++r) {
        quant::dequantize_row(q.type, qv.row_bytes(r), got.data(), t.k);
        std::memcpy(want.data(), ev.row_bytes(r), size_t(t.k) * 4);
        differing += std::memcmp(got.data(), want.data(), size_t(t.k) * 4) != 0;
        for (float v : want) nonzero += v != 0.0f;
      }
      EXPECT_EQ(differing, 0u) << "rows whose dequantized bits differ from llama.cpp's";
      EXPECT_GT(nonzero, size_t(t.rows * t.k / 2)) << "expected values are mostly non-zero";
    }
  }
}

// The quantized values stay close to the source (the files belong together: a stale
// quantized file from another source would fail here). Per row, every value within a
// quarter of the row's largest magnitude: loose for 4 bits (half a step is 1/15 of a
// block's range) and broken by any unrelated source. Rows of pattern 5 are skipped: their
// block scales fall below f16's normal range and llama.cpp's Q6_K stores them as ~0.
TEST(GgufInterop, LlamaQuantizedFilesComeFromTheSource) {
  const auto source = GgufFile::open(interop_dir() + "/source-f32.gguf");
  for (const QuantizedFile& q : kQuantized) {
    SCOPED_TRACE(q.stem);
    const auto expected = GgufFile::open(interop_dir() + "/" + q.stem + "-f32.gguf");
    for (const SourceTensor& t : kSourceTensors) {
      const TensorView sv = source->tensor(t.name), ev = expected->tensor(t.name);
      for (int64_t r = 0; r < t.rows; ++r) {
        if (r % 7 == 5) continue;
        const auto* s = reinterpret_cast<const float*>(sv.row_bytes(r));
        const auto* e = reinterpret_cast<const float*>(ev.row_bytes(r));
        float amax = 0, worst = 0;
        for (int64_t j = 0; j < t.k; ++j) {
          amax = std::max(amax, std::fabs(s[j]));
          worst = std::max(worst, std::fabs(s[j] - e[j]));
        }
        EXPECT_LE(worst, amax / 4) << t.name << " row " << r;
      }
    }
  }
}

// unmask's F16 and BF16 rounding of the source (quantize_row) equals llama-quantize's
// output byte for byte: both round to nearest even.
TEST(GgufInterop, F16AndBf16RoundingEqualsLlamaQuantize) {
  const auto source = GgufFile::open(interop_dir() + "/source-f32.gguf");
  for (const QuantizedFile& q : {QuantizedFile{"llama-f16", DType::F16}, QuantizedFile{"llama-bf16", DType::BF16}}) {
    SCOPED_TRACE(q.stem);
    const auto llama = GgufFile::open(interop_dir() + "/" + q.stem + ".gguf");
    for (const SourceTensor& t : kSourceTensors) {
      const TensorView sv = source->tensor(t.name), lv = llama->tensor(t.name);
      ASSERT_EQ(lv.dtype, q.type) << t.name;
      std::vector<uint8_t> ours(dtype_row_bytes(q.type, t.k * t.rows));
      quant::quantize_row(q.type, reinterpret_cast<const float*>(sv.data), ours.data(), t.k * t.rows);
      EXPECT_EQ(std::memcmp(ours.data(), lv.data, ours.size()), 0) << t.name;
    }
  }
}

}  // namespace
}  // namespace unmask
