// decode/block_commit.h — the block decoder's commit rules on one step's candidates.
//
// Candidates are the active block's masked slots, indexed 0..n-1 in slot order, with
// scores `conf` (larger = surer). Every rule returns candidate indices best first and
// commits at least one candidate when there is any, so a block always finishes.
#pragma once
#include <vector>

#include "unmask/decode.h"

namespace unmask::decode {

// The top `scheduled` (clamped to [1, n]).
std::vector<int> commit_top_n(const std::vector<double>& conf, int scheduled);
// Every candidate with conf >= threshold, at least the best (Fast-dLLM top-1 fallback).
std::vector<int> commit_threshold(const std::vector<double>& conf, double threshold);
// Sorted c_1 >= c_2 >= ...: the largest n such that c_i >= 1 - factor / (i + 1) for
// every i <= n (1-based), at least 1. Fast-dLLM's Theorem 1 bound, without upstream's
// off-by-one of factor_rule_count (commit.h).
int factor_count(const std::vector<double>& conf, double factor);
std::vector<int> commit_factor(const std::vector<double>& conf, double factor);
// LLaDA2 / SDAR: all with conf > threshold when that is at least `scheduled`, else the
// top `scheduled` (clamped to [1, n]).
std::vector<int> commit_dynamic(const std::vector<double>& conf, double threshold, int scheduled);

// Dispatches on opt.commit (threshold / factor from opt).
std::vector<int> select_commits(const BlockDecoderOptions& opt, const std::vector<double>& conf, int scheduled);

}  // namespace unmask::decode
