// Fused word2vec step with hierarchical softmax (CPU): word2vec.c's inner loop as a Paddle
// custom operator.
//
// For each centre word (in order, split over threads "Hogwild" style, as word2vec.c and gensim
// do), walk the centre's tree path and apply plain SGD updates in place:
//   skip-gram: for every context word c:  h = syn0[c]
//   CBOW:      h = mean of the context vectors (each context then gets the full update, as in
//              word2vec.c and gensim with cbow_mean=1)
//   for each path node n with branch code b (1 = right = sigmoid(h . syn1[n])):
//       f = h . syn1[n];  g = alpha * (b - sigmoid(f))
//       neu1e += g * syn1[n];  syn1[n] += g * h
//   then syn0[c] += neu1e for the context word(s).
// Stats returned: [sum of exact -log p(centre | h) over the pairs of every loss_stride-th centre,
// each computed before that pair's update; how many pairs that sum covers; all pairs].
// Unlike word2vec.c: an exact sigmoid (no table); skipping saturated nodes is optional (max_exp).
//
// Threads: with shards = 0 the centres are spread over threads that update the shared vectors
// without locks (Hogwild, as word2vec.c and gensim): fast, but the interleaving, hence the result,
// changes from run to run. With shards = S >= 2 the batch is processed in rounds of
// S x round_centres centres; each round is cut into S contiguous shards, each trained sequentially
// on a copy-on-write view of the rows it touches (the round-start value of a row plus this shard's
// own updates), and at the end of the round the shards' changes (view - round-start value) are
// added to the shared rows in shard order. Every shard's work depends only on the round-start
// vectors and its own centres, and every row's sum is taken in a fixed order, so the result is
// bit-for-bit the same for any number of threads. Like Hogwild, a shard does not see the others'
// updates until the round ends (a staleness of (S-1) x round_centres centres, where Hogwild's is
// the few centres other threads have in flight); unlike it, it never reads a half-written row.
// shards = 1 is the exact sequential loop (one thread, in place).
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "paddle/extension.h"

namespace {

inline float dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float g, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += g * x[i];
}

// One (h, path) update; returns the pair's NLL before the update (0 when !with_loss).
// One exp per node: e = exp(-|f|) gives both sigmoid(f) and log(1 + exp(-|f|)).
// With max_exp > 0, nodes with |f| >= max_exp get no update (word2vec.c and gensim skip them
// with max_exp = 6: the gradient there is below 0.25% of alpha); the loss still counts them.
template <typename Row1>
inline float path_update(const float* h, float* neu1e, Row1 row1, const int64_t* nodes,
                         const int64_t* codes, int64_t L, int64_t D, float alpha, bool with_loss,
                         float max_exp) {
  float nll = 0.f;
  for (int64_t d = 0; d < L && codes[d] >= 0; ++d) {
    float* l2 = row1(nodes[d]);
    const float f = dot(h, l2, D);
    const bool saturated = max_exp > 0.f && std::fabs(f) >= max_exp;
    if (saturated && !with_loss) continue;
    const float e = std::exp(-std::fabs(f));
    const float sig = f >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
    const bool right = codes[d] > 0;
    if (with_loss) {
      // -log sigmoid(z), z = f for a right branch, -f for a left one
      const float z = right ? f : -f;
      nll += (z < 0.f ? -z : 0.f) + std::log1p(e);
    }
    if (saturated) continue;
    const float g = alpha * ((right ? 1.f : 0.f) - sig);
    axpy(g, l2, neu1e, D);
    axpy(g, h, l2, D);
  }
  return nll;
}

// The updates of centre i (its skip-gram pairs or its CBOW window); row0 / row1 give the
// writable row of a word / inner node. Returns the NLL added (when with_loss); counts pairs.
template <typename Row0, typename Row1>
inline double centre_update(int64_t w, const int64_t* ctx, int64_t K, bool cbow, Row0 row0, Row1 row1,
                            const int64_t* pn, const int64_t* pc, int64_t L, int64_t D, float alpha,
                            bool with_loss, float max_exp, std::vector<float>& neu1,
                            std::vector<float>& neu1e, int64_t V, int64_t& pairs, int64_t& loss_pairs) {
  const int64_t* nodes = pn + w * L;
  const int64_t* codes = pc + w * L;
  double loss = 0.0;
  if (!cbow) {
    for (int64_t k = 0; k < K; ++k) {
      const int64_t c = ctx[k];
      if (c < 0 || c >= V) continue;
      float* l1 = row0(c);
      std::fill(neu1e.begin(), neu1e.end(), 0.f);
      loss += path_update(l1, neu1e.data(), row1, nodes, codes, L, D, alpha, with_loss, max_exp);
      axpy(1.f, neu1e.data(), l1, D);
      ++pairs;
      loss_pairs += with_loss;
    }
    return loss;
  }
  int64_t count = 0;
  std::fill(neu1.begin(), neu1.end(), 0.f);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t c = ctx[k];
    if (c < 0 || c >= V) continue;
    axpy(1.f, row0(c), neu1.data(), D);
    ++count;
  }
  if (count == 0) return 0.0;
  const float inv = 1.f / static_cast<float>(count);
  for (int64_t j = 0; j < D; ++j) neu1[j] *= inv;
  std::fill(neu1e.begin(), neu1e.end(), 0.f);
  loss += path_update(neu1.data(), neu1e.data(), row1, nodes, codes, L, D, alpha, with_loss, max_exp);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t c = ctx[k];
    if (c < 0 || c >= V) continue;
    axpy(1.f, neu1e.data(), row0(c), D);
  }
  ++pairs;
  loss_pairs += with_loss;
  return loss;
}

// A shard's copy-on-write view of a [rows, D] table: slot[r] = -1 until row r is first touched,
// then the row's position in `local` (its working value) and `orig` (its batch-start value).
// Kept between calls (the slot array is V ints), reset row by row after each merge.
struct RowView {
  std::vector<int32_t> slot;
  std::vector<int64_t> rows;
  std::vector<float> local, orig;

  void prepare(int64_t num_rows) {
    if (static_cast<int64_t>(slot.size()) != num_rows) slot.assign(num_rows, -1);
    rows.clear();
    local.clear();
    orig.clear();
  }
  float* row(const float* shared, int64_t r, int64_t D) {
    int32_t s = slot[r];
    if (s < 0) {
      s = static_cast<int32_t>(rows.size());
      slot[r] = s;
      rows.push_back(r);
      local.insert(local.end(), shared + r * D, shared + (r + 1) * D);
      orig.insert(orig.end(), shared + r * D, shared + (r + 1) * D);
    }
    return local.data() + static_cast<int64_t>(s) * D;
  }
  // shared[r] += local - orig for the touched rows this thread owns (r % nt == tid), then their
  // slots reset; called by every thread of the team for every shard in shard order
  void merge_owned(float* shared, int64_t D, int tid, int nt) {
    const int64_t n = static_cast<int64_t>(rows.size());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = rows[i];
      if (r % nt != tid) continue;
      float* dst = shared + r * D;
      const float* a = local.data() + i * D;
      const float* b = orig.data() + i * D;
      for (int64_t j = 0; j < D; ++j) dst[j] += a[j] - b[j];
      slot[r] = -1;
    }
  }
};

struct ShardState {
  RowView v0, v1;
};

std::mutex g_shards_mutex;
std::vector<ShardState> g_shards;

}  // namespace

std::vector<paddle::Tensor> Word2VecHsStep(paddle::Tensor& syn0, paddle::Tensor& syn1,
                                           const paddle::Tensor& path_nodes,
                                           const paddle::Tensor& path_codes,
                                           const paddle::Tensor& centres,
                                           const paddle::Tensor& contexts, float alpha, bool cbow,
                                           int threads, int loss_stride, float max_exp,
                                           int shards, int round_centres) {
  PD_CHECK(syn0.is_cpu() && syn1.is_cpu(), "word2vec_hs_step runs on CPU tensors only");
  PD_CHECK(syn0.dtype() == paddle::DataType::FLOAT32 && syn1.dtype() == paddle::DataType::FLOAT32,
           "syn0 and syn1 must be float32");
  PD_CHECK(path_nodes.dtype() == paddle::DataType::INT64 && path_codes.dtype() == paddle::DataType::INT64 &&
               centres.dtype() == paddle::DataType::INT64 && contexts.dtype() == paddle::DataType::INT64,
           "path tables, centres and contexts must be int64");
  const int64_t V = syn0.shape()[0], D = syn0.shape()[1];
  const int64_t L = path_nodes.shape()[1];
  const int64_t N = centres.shape()[0], K = contexts.shape()[1];
  PD_CHECK(syn1.shape()[0] == V - 1 && syn1.shape()[1] == D, "syn1 must be [V-1, D]");
  PD_CHECK(path_nodes.shape()[0] == V && path_codes.shape()[0] == V, "path tables must have V rows");
  PD_CHECK(contexts.shape()[0] == N, "contexts must have one row per centre");
  float* s0 = syn0.data<float>();
  float* s1 = syn1.data<float>();
  const int64_t* pn = path_nodes.data<int64_t>();
  const int64_t* pc = path_codes.data<int64_t>();
  const int64_t* ce = centres.data<int64_t>();
  const int64_t* cx = contexts.data<int64_t>();
  const int64_t stride = loss_stride > 0 ? loss_stride : 1;
  double loss = 0.0;
  int64_t pairs = 0, loss_pairs = 0;
  const int nthreads = threads > 0 ? threads : 1;
  if (shards > 1) {
    std::lock_guard<std::mutex> guard(g_shards_mutex);  // the views are shared between calls
    if (static_cast<int64_t>(g_shards.size()) < shards) g_shards.resize(shards);
    std::vector<double> shard_loss(shards, 0.0);
    std::vector<int64_t> shard_pairs(shards, 0), shard_loss_pairs(shards, 0);
    const int64_t per_round = static_cast<int64_t>(shards) * (round_centres > 0 ? round_centres : 1);
    const int team = std::max(1, std::min<int>(nthreads, shards));
    // one parallel region for the whole batch: per round, the shards (one barrier), then the merge
    // split by row owner (row % team), each thread applying the shards' changes to its rows in
    // shard order (one barrier); the partition of rows never changes the sums' order
#pragma omp parallel num_threads(team)
    {
      std::vector<float> neu1(D), neu1e(D);
#ifdef _OPENMP
      const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
#else
      const int tid = 0, nt = 1;
#endif
      for (int64_t r0 = 0; r0 < N; r0 += per_round) {
        const int64_t n = std::min(per_round, N - r0);
#pragma omp for schedule(static, 1)
        for (int64_t sh = 0; sh < shards; ++sh) {
          ShardState& st = g_shards[sh];
          st.v0.prepare(V);
          st.v1.prepare(V - 1);
          auto row0 = [&](int64_t r) { return st.v0.row(s0, r, D); };
          auto row1 = [&](int64_t r) { return st.v1.row(s1, r, D); };
          const int64_t begin = r0 + n * sh / shards, end = r0 + n * (sh + 1) / shards;
          for (int64_t i = begin; i < end; ++i) {
            const int64_t w = ce[i];
            if (w < 0 || w >= V) continue;
            shard_loss[sh] += centre_update(w, cx + i * K, K, cbow, row0, row1, pn, pc, L, D, alpha,
                                            i % stride == 0, max_exp, neu1, neu1e, V, shard_pairs[sh],
                                            shard_loss_pairs[sh]);
          }
        }  // implicit barrier: every shard of the round is done
        for (int64_t sh = 0; sh < shards; ++sh) {
          g_shards[sh].v0.merge_owned(s0, D, tid, nt);
          g_shards[sh].v1.merge_owned(s1, D, tid, nt);
        }
#pragma omp barrier
      }
    }
    for (int64_t sh = 0; sh < shards; ++sh) {
      loss += shard_loss[sh];
      pairs += shard_pairs[sh];
      loss_pairs += shard_loss_pairs[sh];
    }
  } else {
    // shards == 1: one thread in place, the exact sequential loop
#pragma omp parallel num_threads(shards == 1 ? 1 : nthreads) reduction(+ : loss, pairs, loss_pairs)
  {
    std::vector<float> neu1(D), neu1e(D);
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < N; ++i) {
      const int64_t w = ce[i];
      if (w < 0 || w >= V) continue;
      auto row0 = [&](int64_t r) { return s0 + r * D; };
      auto row1 = [&](int64_t r) { return s1 + r * D; };
      loss += centre_update(w, cx + i * K, K, cbow, row0, row1, pn, pc, L, D, alpha, i % stride == 0,
                            max_exp, neu1, neu1e, V, pairs, loss_pairs);
    }
  }
  }
  auto stats = paddle::full({3}, 0.0, paddle::DataType::FLOAT64, paddle::CPUPlace());
  double* out = stats.data<double>();
  out[0] = loss;
  out[1] = static_cast<double>(loss_pairs);
  out[2] = static_cast<double>(pairs);
  return {stats};
}

PD_BUILD_OP(word2vec_hs_step)
    .Inputs({"Syn0", "Syn1", "PathNodes", "PathCodes", "Centres", "Contexts"})
    .Outputs({"Syn0Out", "Syn1Out", "Stats"})
    .Attrs({"alpha: float", "cbow: bool", "threads: int", "loss_stride: int", "max_exp: float",
            "shards: int",
            "round_centres: int"})
    .SetInplaceMap({{"Syn0", "Syn0Out"}, {"Syn1", "Syn1Out"}})
    .SetKernelFn(PD_KERNEL(Word2VecHsStep));
