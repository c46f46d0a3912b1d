// Exact top-k search down a hierarchical-softmax tree, one row per thread: fastText's pruned
// search (src/loss.cc, HierarchicalSoftmaxLoss::dfs) in best-first order.
//
// Inputs: Hidden [N, D], Weight [V-1, D], Bias [V-1] (or an empty tensor), Children [2 (V-1)]
// int64 (entry 2n + c: the child of inner node n on branch c, an inner id or V-1 + word).
// Attr k. Outputs: Values [N, k] (log-probabilities, best first), Ids [N, k] int64, Expanded [N]
// int64 (inner nodes scored per row).
//
// Per row: a max-heap of (log-probability, inner node) starting at the root (0) and a min-heap
// of the k best leaves so far. A popped node at or below the k-th best value cannot hold a better
// leaf (each branch adds log sigmoid <= 0), and every node left in the heap is no better, so the
// search stops there: it is exact. Each child's log-probability is its parent's plus the
// log-sigmoid of its branch, added in the order HierarchicalSoftmax.full_log_prob adds them.
// The Paddle-ops search (output/tree_search.py) is the GPU and export path; tests check both.

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "paddle/extension.h"

template <typename T>
static inline T log_sigmoid(T x) {
  return std::min(x, T(0)) - std::log1p(std::exp(-std::abs(x)));
}

template <typename T>
static void search_rows(const T* h, const T* w, const T* b, const int64_t* children, int64_t N,
                        int64_t D, int64_t M, int64_t k, int threads, T* out_v, int64_t* out_i,
                        int64_t* out_n) {
  const T neg = -std::numeric_limits<T>::infinity();
  if (threads <= 0) threads = omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
  for (int64_t r = 0; r < N; ++r) {
    const T* hr = h + r * D;
    std::vector<std::pair<T, int64_t>> queue;  // max-heap of (log p, inner node)
    std::vector<std::pair<T, int64_t>> top;    // min-heap of (log p, word): greater<> order
    queue.reserve(64);
    top.reserve(k + 1);
    queue.emplace_back(T(0), 0);
    int64_t expanded = 0;
    auto kth = [&]() { return static_cast<int64_t>(top.size()) < k ? neg : top.front().first; };
    auto worse = [](const std::pair<T, int64_t>& a, const std::pair<T, int64_t>& c) { return a > c; };
    while (!queue.empty()) {
      std::pop_heap(queue.begin(), queue.end());
      const std::pair<T, int64_t> best = queue.back();
      queue.pop_back();
      if (!(best.first > kth())) break;
      ++expanded;
      const int64_t n = best.second;
      const T* wn = w + n * D;
      T z = b != nullptr ? b[n] : T(0);
      T dot = T(0);
#pragma omp simd reduction(+ : dot)
      for (int64_t d = 0; d < D; ++d) dot += wn[d] * hr[d];
      z += dot;
      const T value[2] = {best.first + log_sigmoid(-z), best.first + log_sigmoid(z)};
      for (int c = 0; c < 2; ++c) {
        const T v = value[c];
        if (!(v > kth())) continue;
        const int64_t child = children[2 * n + c];
        if (child >= M) {
          top.emplace_back(v, child - M);
          std::push_heap(top.begin(), top.end(), worse);
          if (static_cast<int64_t>(top.size()) > k) {
            std::pop_heap(top.begin(), top.end(), worse);
            top.pop_back();
          }
        } else {
          queue.emplace_back(v, child);
          std::push_heap(queue.begin(), queue.end());
        }
      }
    }
    std::sort(top.begin(), top.end(), worse);  // best first
    for (int64_t j = 0; j < k; ++j) {
      const bool have = j < static_cast<int64_t>(top.size());
      out_v[r * k + j] = have ? top[j].first : neg;
      out_i[r * k + j] = have ? top[j].second : 0;
    }
    out_n[r] = expanded;
  }
}

std::vector<paddle::Tensor> TreeSearchTopk(const paddle::Tensor& hidden, const paddle::Tensor& weight,
                                           const paddle::Tensor& bias, const paddle::Tensor& children,
                                           int64_t k, int threads) {
  PD_CHECK(hidden.is_cpu() && weight.is_cpu() && children.is_cpu(), "tree_search_topk runs on CPU tensors");
  const int64_t N = hidden.shape()[0], D = hidden.shape()[1], M = weight.shape()[0];
  PD_CHECK(weight.shape()[1] == D, "weight must be [V-1, D]");
  PD_CHECK(children.numel() == 2 * M, "children must hold 2 (V-1) entries");
  PD_CHECK(k >= 1 && k <= M + 1, "k must be in [1, V]");
  const bool has_bias = bias.numel() > 0;
  PD_CHECK(!has_bias || bias.numel() == M, "bias must be [V-1] or empty");
  auto values = paddle::empty({N, k}, hidden.dtype(), paddle::CPUPlace());
  auto ids = paddle::empty({N, k}, paddle::DataType::INT64, paddle::CPUPlace());
  auto expanded = paddle::empty({N}, paddle::DataType::INT64, paddle::CPUPlace());
  if (hidden.dtype() == paddle::DataType::FLOAT32) {
    search_rows<float>(hidden.data<float>(), weight.data<float>(), has_bias ? bias.data<float>() : nullptr,
                       children.data<int64_t>(), N, D, M, k, threads, values.data<float>(),
                       ids.data<int64_t>(), expanded.data<int64_t>());
  } else if (hidden.dtype() == paddle::DataType::FLOAT64) {
    search_rows<double>(hidden.data<double>(), weight.data<double>(), has_bias ? bias.data<double>() : nullptr,
                        children.data<int64_t>(), N, D, M, k, threads, values.data<double>(),
                        ids.data<int64_t>(), expanded.data<int64_t>());
  } else {
    PD_THROW("tree_search_topk supports float32 and float64");
  }
  return {values, ids, expanded};
}

PD_BUILD_OP(tree_search_topk)
    .Inputs({"Hidden", "Weight", "Bias", "Children"})
    .Outputs({"Values", "Ids", "Expanded"})
    .Attrs({"k: int64_t", "threads: int"})
    .SetKernelFn(PD_KERNEL(TreeSearchTopk));
