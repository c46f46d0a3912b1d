// Fused word2vec training (CPU): word2vec.c's inner loop as a plain C library (no Paddle), with
// hierarchical softmax (HsOut) or negative sampling (NsOut).
//
// For each centre word, plain SGD updates in place:
//   skip-gram: for every context word c:  h = syn0[c]
//   CBOW:      h = mean of the context vectors (each context then gets the full update, as in
//              word2vec.c and gensim with cbow_mean=1)
//   HS: for each node n of the centre's tree path with branch code b (1 = right = sigmoid(h . syn1[n])):
//   NS: for the centre (b = 1) and `negative` draws from the unigram^0.75 table (b = 0), n = syn1neg row:
//       f = h . syn1[n];  g = alpha * (b - sigmoid(f))
//       neu1e += g * syn1[n];  syn1[n] += g * h
//   then syn0[c] += neu1e for the context word(s).
// Entry points (extern "C", at the end): phs_w2v_hs_step / phs_w2v_ns_step take given centres
// and context windows (built in NumPy; the deterministic shards below); phs_w2v_train_tokens
// takes a piece of the corpus's
// token stream and does all of word2vec.c's loop itself: subsampling, dynamic windows, negative
// draws, alpha decaying linearly over the piece (nothing per token in Python).
// Stats returned: [sum of the exact pair losses of every loss_stride-th centre, each computed
// before that pair's update; how many pairs that sum covers; all pairs (; kept tokens)].
// The sigmoid: exact for the centres whose loss is summed, word2vec.c's 1000-entry table for the
// others; HS skips nodes with |f| >= max_exp (6 as word2vec.c and gensim; 0 = none).
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
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

// The vector kernels (D floats, D = 100 by default): with AVX-512, two accumulators and a masked
// tail (no scalar remainder: 100 = 6 x 16 + 4); elsewhere the compiler's own vectorisation.
#if defined(__AVX512F__)
inline __mmask16 tail_mask(int64_t left) { return static_cast<__mmask16>((1u << left) - 1u); }

inline float dot(const float* a, const float* b, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  if (i + 16 <= n) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    i += 16;
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

inline void axpy(float g, const float* x, float* y, int64_t n) {
  const __m512 vg = _mm512_set1_ps(g);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vg, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(vg, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// acc += g * u, then u += g * h (u read once): one output row's update and its share of the
// input's, in word2vec.c's order
inline void axpy_pair(float g, float* u, const float* h, float* acc, int64_t n) {
  const __m512 vg = _mm512_set1_ps(g);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 vu = _mm512_loadu_ps(u + i);
    _mm512_storeu_ps(acc + i, _mm512_fmadd_ps(vg, vu, _mm512_loadu_ps(acc + i)));
    _mm512_storeu_ps(u + i, _mm512_fmadd_ps(vg, _mm512_loadu_ps(h + i), vu));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 vu = _mm512_maskz_loadu_ps(m, u + i);
    _mm512_mask_storeu_ps(acc + i, m, _mm512_fmadd_ps(vg, vu, _mm512_maskz_loadu_ps(m, acc + i)));
    _mm512_mask_storeu_ps(u + i, m, _mm512_fmadd_ps(vg, _mm512_maskz_loadu_ps(m, h + i), vu));
  }
}
#else
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

inline void axpy_pair(float g, float* u, const float* h, float* acc, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = u[i];
    acc[i] += g * v;
    u[i] = v + g * h[i];
  }
}
#endif

// word2vec.c's sigmoid table: 1000 values over [-6, 6], used by the updates of the centres whose
// loss is not logged (those use the exact sigmoid, so the logged loss and the tests stay exact);
// beyond +-6 the sigmoid reads as 1 or 0
constexpr int kSigmoidTable = 1000;
constexpr float kSigmoidMax = 6.f;
struct SigmoidTable {
  float v[kSigmoidTable + 1];
  SigmoidTable() {
    for (int i = 0; i <= kSigmoidTable; ++i) {
      const double x = (static_cast<double>(i) / kSigmoidTable * 2.0 - 1.0) * kSigmoidMax;
      v[i] = static_cast<float>(1.0 / (1.0 + std::exp(-x)));
    }
  }
};
const SigmoidTable g_sigmoid;
inline float table_sigmoid(float f) {
  if (f >= kSigmoidMax) return 1.f;
  if (f <= -kSigmoidMax) return 0.f;
  return g_sigmoid.v[static_cast<int>((f + kSigmoidMax) * (kSigmoidTable / kSigmoidMax / 2.f))];
}

// -log sigmoid(z) from z and e = exp(-|z|)
inline float neg_log_sigmoid(float z, float e) { return (z < 0.f ? -z : 0.f) + std::log1p(e); }

// word2vec.c's generator (a 48-bit LCG), seeded per sentence or centre through splitmix64 so the
// draws depend on (seed, position) only, never on which thread takes the work
struct Rng {
  uint64_t state;
  static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  Rng(uint64_t seed, uint64_t stream) : state(mix(seed * 0x2545F4914F6CDD1DULL + mix(stream))) {}
  uint64_t next() {
    state = state * 25214903917ULL + 11ULL;
    return state >> 16;  // the low bits of an LCG are weak
  }
  float uniform() { return static_cast<float>(next() & 0xFFFFFF) / 16777216.f; }  // [0, 1)
};

// Hierarchical softmax: walk the centre's path. One exp per node: e = exp(-|f|) gives both
// sigmoid(f) and log(1 + exp(-|f|)). With max_exp > 0, nodes with |f| >= max_exp get no update
// (word2vec.c and gensim skip them with max_exp = 6: the gradient there is below 0.25% of
// alpha); the loss still counts them.
constexpr int64_t kPathBlock = 64;  // path nodes scored together (longer paths: in blocks)

struct HsOut {
  const int64_t* pn;
  const int64_t* pc;
  int64_t L;
  float max_exp;

  template <typename Row1>
  float update(int64_t w, const float* h, float* neu1e, Row1 row1, int64_t D, float alpha, bool with_loss,
               Rng&, const int64_t*) const {
    const int64_t* nodes = pn + w * L;
    const int64_t* codes = pc + w * L;
    int64_t n = 0;
    while (n < L && codes[n] >= 0) ++n;
    // The path's nodes are distinct rows and h does not change along the walk, so every score
    // f = h . v_node can be taken before any update (the same values word2vec.c's node-by-node
    // loop computes): the dot products are independent, and overlap in the pipeline.
    float f[kPathBlock], g[kPathBlock];
    float nll = 0.f;
    for (int64_t start = 0; start < n; start += kPathBlock) {
      const int64_t m = std::min<int64_t>(kPathBlock, n - start);
      for (int64_t d = 0; d < m; ++d) f[d] = dot(h, row1(nodes[start + d]), D);
      for (int64_t d = 0; d < m; ++d) {
        const bool right = codes[start + d] > 0;
        const bool saturated = max_exp > 0.f && std::fabs(f[d]) >= max_exp;
        float sig;
        if (with_loss) {
          const float e = std::exp(-std::fabs(f[d]));
          sig = f[d] >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
          nll += neg_log_sigmoid(right ? f[d] : -f[d], e);  // z = f right, -f left
        } else {
          sig = saturated ? 0.f : table_sigmoid(f[d]);
        }
        g[d] = saturated ? 0.f : alpha * ((right ? 1.f : 0.f) - sig);
      }
      // row1 again: a shard's view may have moved its rows while the block's rows were added
      for (int64_t d = 0; d < m; ++d) {
        if (g[d] != 0.f) axpy_pair(g[d], row1(nodes[start + d]), h, neu1e, D);
      }
    }
    return nll;
  }
};

// Negative sampling (word2vec.c): the centre w with label 1, then `negative` draws from the
// unigram^0.75 table with label 0 (a draw equal to w is skipped), each updated in turn:
// g = alpha * (label - sigmoid(h . u)); neu1e += g * u; u += g * h. The pair's loss is
// -log sigmoid(h . u_w) - sum log sigmoid(-h . u_n). `fixed` (when not null) gives the draws
// instead of the table (-1 = none), for tests. Every target is updated (as word2vec.c, which reads
// the sigmoid as 0/1 beyond MAX_EXP and still updates).
struct NsOut {
  const int32_t* table;
  int64_t table_size;
  int negative;

  template <typename Row1>
  float update(int64_t w, const float* h, float* neu1e, Row1 row1, int64_t D, float alpha, bool with_loss,
               Rng& rng, const int64_t* fixed) const {
    float loss = 0.f;
    for (int d = 0; d <= negative; ++d) {
      int64_t target = w;
      if (d > 0) {
        target = fixed ? fixed[d - 1] : table[rng.next() % static_cast<uint64_t>(table_size)];
        if (target < 0 || target == w) continue;
      }
      float* u = row1(target);
      const float f = dot(h, u, D);
      float sig;
      if (with_loss) {
        const float e = std::exp(-std::fabs(f));
        sig = f >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
        loss += neg_log_sigmoid(d == 0 ? f : -f, e);
      } else {
        sig = table_sigmoid(f);
      }
      const float g = alpha * ((d == 0 ? 1.f : 0.f) - sig);
      axpy_pair(g, u, h, neu1e, D);
    }
    return loss;
  }
};

// The updates of centre w with its K context slots ctx (its skip-gram pairs, or its CBOW
// window); row0 / row1 give the writable row of a word / output row. Returns the loss added
// (when with_loss); counts pairs. fixed: the pairs' fixed negative draws (skip-gram: `negative`
// per context slot; CBOW: `negative` for the window), or null.
template <typename Out, typename Row0, typename Row1, typename Ctx>
inline double centre_update(int64_t w, Ctx ctx, int64_t K, bool cbow, Row0 row0, Row1 row1, const Out& out,
                            int64_t D, float alpha, bool with_loss, float* neu1, float* neu1e, int64_t V,
                            int64_t& pairs, int64_t& loss_pairs, Rng& rng, const int64_t* fixed, int negative) {
  double loss = 0.0;
  if (!cbow) {
    for (int64_t k = 0; k < K; ++k) {
      const int64_t c = ctx(k);
      if (c < 0 || c >= V) continue;
      float* l1 = row0(c);
      std::fill(neu1e, neu1e + D, 0.f);
      loss += out.update(w, l1, neu1e, row1, D, alpha, with_loss, rng, fixed ? fixed + k * negative : nullptr);
      axpy(1.f, neu1e, l1, D);
      ++pairs;
      loss_pairs += with_loss;
    }
    return loss;
  }
  int64_t count = 0;
  std::fill(neu1, neu1 + D, 0.f);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t c = ctx(k);
    if (c < 0 || c >= V) continue;
    axpy(1.f, row0(c), neu1, D);
    ++count;
  }
  if (count == 0) return 0.0;
  const float inv = 1.f / static_cast<float>(count);
  for (int64_t j = 0; j < D; ++j) neu1[j] *= inv;
  std::fill(neu1e, neu1e + D, 0.f);
  loss += out.update(w, neu1, neu1e, row1, D, alpha, with_loss, rng, fixed);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t c = ctx(k);
    if (c < 0 || c >= V) continue;
    axpy(1.f, neu1e, row0(c), D);
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

namespace {

// Centre-by-centre training over given (centres[N], contexts[N, K]) for either output. With
// shards = 0 the centres are spread over threads (Hogwild); shards = S >= 2: the deterministic
// rounds described at the top of this file; shards = 1: the sequential loop. Centre i's random
// draws (negative sampling) come from Rng(seed, i): the same whoever runs it.
template <typename Out>
void centre_batch(float* s0, float* s1, int64_t V, int64_t R1, int64_t D, const int64_t* ce, const int64_t* cx,
                  int64_t N, int64_t K, bool cbow, const Out& out, float alpha, int nthreads, int64_t stride,
                  int shards, int round_centres, uint64_t seed, const int64_t* fixed, int negative,
                  double& loss, int64_t& pairs, int64_t& loss_pairs) {
  const int64_t fixed_stride = fixed ? (cbow ? negative : K * negative) : 0;
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
          st.v1.prepare(R1);
          auto row0 = [&](int64_t r) { return st.v0.row(s0, r, D); };
          auto row1 = [&](int64_t r) { return st.v1.row(s1, r, D); };
          const int64_t begin = r0 + n * sh / shards, end = r0 + n * (sh + 1) / shards;
          for (int64_t i = begin; i < end; ++i) {
            const int64_t w = ce[i];
            if (w < 0 || w >= V) continue;
            Rng rng(seed, static_cast<uint64_t>(i));
            const int64_t* c = cx + i * K;
            shard_loss[sh] += centre_update(w, [c](int64_t k) { return c[k]; }, K, cbow, row0, row1, out, D,
                                            alpha, i % stride == 0, neu1.data(), neu1e.data(), V,
                                            shard_pairs[sh], shard_loss_pairs[sh], rng,
                                            fixed ? fixed + i * fixed_stride : nullptr, negative);
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
    return;
  }
  double l = 0.0;
  int64_t p = 0, lp = 0;
  // shards == 1: one thread in place, the exact sequential loop
#pragma omp parallel num_threads(shards == 1 ? 1 : nthreads) reduction(+ : l, p, lp)
  {
    std::vector<float> neu1(D), neu1e(D);
    auto row0 = [&](int64_t r) { return s0 + r * D; };
    auto row1 = [&](int64_t r) { return s1 + r * D; };
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < N; ++i) {
      const int64_t w = ce[i];
      if (w < 0 || w >= V) continue;
      Rng rng(seed, static_cast<uint64_t>(i));
      const int64_t* c = cx + i * K;
      l += centre_update(w, [c](int64_t k) { return c[k]; }, K, cbow, row0, row1, out, D, alpha, i % stride == 0,
                         neu1.data(), neu1e.data(), V, p, lp, rng, fixed ? fixed + i * fixed_stride : nullptr,
                         negative);
    }
  }
  loss += l;
  pairs += p;
  loss_pairs += lp;
}

// word2vec.c's whole loop over a piece of the corpus: tokens[T] holds word ids with -1 after
// each sentence. Two phases, each spread over the threads:
//  1. each sentence is subsampled (keep[w] = probability of keeping a token of w, drawn from
//     Rng(seed, sentence)) into a buffer at the sentence's own offset;
//  2. the kept positions are trained in work units of at most kUnit consecutive centres of one
//     sentence (Hogwild across threads): every centre draws its window reach b in [1, window]
//     (and its negatives) from Rng(seed + 1, unit) and trains its pairs, the window reading the
//     whole sentence. Units, not sentences, are the threads' work: a corpus of article-long lines
//     (English Wikipedia: 10,000-word "sentences") would otherwise leave a thread idle at the end
//     of every piece while the other finishes its last long sentence.
// alpha falls linearly from alpha0 at the piece's first token to alpha1 at its end, by unit. The
// draws depend on (seed, tokens) only, so with one thread the result does too.
constexpr int64_t kUnit = 1024;
//
// With two threads or more, each thread trains on its own copy of the output rows [0, kHotRows)
// and folds its changes into the shared table every kHotPeriod centres (HotRows). Those are the
// rows every pair touches: the inner nodes nearest the root (a parent's id is below its
// children's, so [0, H) is the top of the tree) or, for negative sampling, the most frequent
// words. Written in place by two cores at once, their cache lines moved between the cores at
// every update: on a 2-core Intel Xeon, skip-gram HS with 2 threads ran at 305k words/s against
// 825k with one (kernel_vs_gensim.py, People's Daily); with private hot rows 1.07M. Measured
// (same script, words/s): 64 rows / 32 centres 1.07M, 16 / 16 0.88M, 256 / 64 1.10M; WordSim353,
// SimLex999 and analogies unchanged within 0.01 (compare_gensim.py, English). A row's copy is
// at most kHotPeriod centres stale, as Hogwild's in-flight updates are a few; one thread trains in
// place, exactly as before.
constexpr int64_t kHotRows = 64;
constexpr int64_t kHotPeriod = 32;

// A thread's private copy of the output rows [0, H) (the inner nodes nearest the root, or the most
// frequent words' rows), folded into the shared table every few centres: shared += local - orig,
// then local = orig = shared, under one mutex.
struct HotRows {
  float* shared;
  int64_t n;
  std::vector<float> local, orig;
  HotRows(float* s, int64_t rows, int64_t D) : shared(s), n(rows * D), local(n), orig(n) {}
  void refresh(std::mutex& m) {
    if (n == 0) return;
    std::lock_guard<std::mutex> guard(m);
    std::copy(shared, shared + n, local.begin());
    std::copy(shared, shared + n, orig.begin());
  }
  void merge(std::mutex& m) {
    std::lock_guard<std::mutex> guard(m);
    for (int64_t i = 0; i < n; ++i) {
      const float v = shared[i] + (local[i] - orig[i]);
      shared[i] = v;
      local[i] = v;
      orig[i] = v;
    }
  }
};

template <typename Out>
void train_tokens(float* s0, float* s1, int64_t V, int64_t R1, int64_t D, const int32_t* tok, int64_t T, const float* keep,
                  int window, bool cbow, const Out& out, float alpha0, float alpha1, int nthreads, int64_t stride,
                  uint64_t seed, double& loss, int64_t& pairs, int64_t& loss_pairs, int64_t& kept) {
  std::vector<int64_t> begins, ends;
  int64_t b = 0;
  for (int64_t t = 0; t < T; ++t) {
    if (tok[t] < 0) {
      if (t > b) begins.push_back(b), ends.push_back(t);
      b = t + 1;
    }
  }
  if (T > b) begins.push_back(b), ends.push_back(T);
  const int64_t S = static_cast<int64_t>(begins.size());
  const int64_t W = window > 0 ? window : 1;
  std::vector<int32_t> sub(static_cast<size_t>(T));  // sentence s's kept ids at sub[begins[s]...]
  std::vector<int64_t> n_kept(static_cast<size_t>(S), 0);
  int64_t kp = 0;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 16) reduction(+ : kp)
  for (int64_t s = 0; s < S; ++s) {
    Rng rng(seed, static_cast<uint64_t>(s));
    int32_t* dst = sub.data() + begins[s];
    int64_t n = 0;
    for (int64_t t = begins[s]; t < ends[s]; ++t) {
      const int32_t w = tok[t];
      if (w >= V) continue;
      if (keep[w] < 1.f && rng.uniform() >= keep[w]) continue;
      dst[n++] = w;
    }
    n_kept[s] = n;
    kp += n;
  }
  std::vector<int64_t> unit_sentence, unit_first;  // unit u: centres [unit_first[u], + kUnit) of a sentence
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t i = 0; i < n_kept[s]; i += kUnit) unit_sentence.push_back(s), unit_first.push_back(i);
  }
  const int64_t U = static_cast<int64_t>(unit_sentence.size());
  double l = 0.0;
  int64_t p = 0, lp = 0;
  const int64_t H = nthreads > 1 ? std::min<int64_t>(kHotRows, R1) : 0;
  std::mutex hot_mutex;
#pragma omp parallel num_threads(nthreads) reduction(+ : l, p, lp)
  {
    std::vector<float> neu1(D), neu1e(D);
    HotRows hot(s1, H, D);
    hot.refresh(hot_mutex);
    int64_t since = 0;
    auto row0 = [&](int64_t r) { return s0 + r * D; };
    auto row1 = [&](int64_t r) { return r < H ? hot.local.data() + r * D : s1 + r * D; };
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < U; ++u) {
      const int64_t s = unit_sentence[u], first = unit_first[u];
      const int64_t n = n_kept[s], last = std::min<int64_t>(n, first + kUnit);
      Rng rng(seed + 1, static_cast<uint64_t>(u));
      const float at = static_cast<float>(begins[s] + first) / static_cast<float>(T);
      const float alpha = alpha0 + (alpha1 - alpha0) * at;
      const int32_t* x = sub.data() + begins[s];
      for (int64_t i = first; i < last; ++i) {
        const int64_t reach = W - static_cast<int64_t>(rng.next() % static_cast<uint64_t>(W));
        const int64_t lo = std::max<int64_t>(0, i - reach), hi = std::min<int64_t>(n, i + reach + 1);
        const int64_t K = hi - lo - 1, before = i - lo;
        if (K <= 0) continue;
        auto ctx = [x, lo, before](int64_t k) { return static_cast<int64_t>(x[lo + k + (k >= before)]); };
        l += centre_update(static_cast<int64_t>(x[i]), ctx, K, cbow, row0, row1, out, D, alpha, i % stride == 0,
                           neu1.data(), neu1e.data(), V, p, lp, rng, nullptr, 0);
        if (H > 0 && ++since == kHotPeriod) hot.merge(hot_mutex), since = 0;
      }
    }
    if (H > 0) hot.merge(hot_mutex);
  }
  loss += l;
  pairs += p;
  loss_pairs += lp;
  kept += kp;
}

}  // namespace

// The C ABI, loaded with ctypes (paddle_hsoftmax/word2vec_kernel.py), so that a word2vec run
// needs neither Paddle's headers to build nor Paddle itself to run: the Python side checks
// dtypes and shapes and passes raw pointers to C-contiguous arrays (NumPy arrays or Paddle CPU
// tensors, updated in place). Stats are written to `stats`: [loss, pairs in it, all pairs
// (, kept tokens)]. Each returns 0.
extern "C" {

int phs_w2v_hs_step(float* syn0, float* syn1, int64_t V, int64_t D, const int64_t* path_nodes,
                    const int64_t* path_codes, int64_t L, const int64_t* centres, const int64_t* contexts,
                    int64_t N, int64_t K, float alpha, int cbow, int threads, int loss_stride, float max_exp,
                    int shards, int round_centres, double* stats) {
  const HsOut out{path_nodes, path_codes, L, max_exp};
  double loss = 0.0;
  int64_t pairs = 0, loss_pairs = 0;
  centre_batch(syn0, syn1, V, V - 1, D, centres, contexts, N, K, cbow != 0, out, alpha, threads > 0 ? threads : 1,
               loss_stride > 0 ? loss_stride : 1, shards, round_centres, 0, nullptr, 0, loss, pairs, loss_pairs);
  stats[0] = loss, stats[1] = static_cast<double>(loss_pairs), stats[2] = static_cast<double>(pairs);
  return 0;
}

// Negative sampling over given centres and contexts: syn1 is syn1neg [V, D]; table: the
// unigram^0.75 table; negatives: [N, K, negative] (skip-gram) or [N, negative] (CBOW) fixed
// draws (-1 = none), or null to draw from the table with Rng(seed, centre).
int phs_w2v_ns_step(float* syn0, float* syn1, int64_t V, int64_t D, const int32_t* table, int64_t table_size,
                    const int64_t* centres, const int64_t* contexts, const int64_t* negatives, int64_t N, int64_t K,
                    float alpha, int cbow, int threads, int loss_stride, int negative, int seed, int shards,
                    int round_centres, double* stats) {
  const NsOut out{table, table_size, negative};
  double loss = 0.0;
  int64_t pairs = 0, loss_pairs = 0;
  centre_batch(syn0, syn1, V, V, D, centres, contexts, N, K, cbow != 0, out, alpha, threads > 0 ? threads : 1,
               loss_stride > 0 ? loss_stride : 1, shards, round_centres,
               static_cast<uint64_t>(static_cast<uint32_t>(seed)), negatives, negative, loss, pairs, loss_pairs);
  stats[0] = loss, stats[1] = static_cast<double>(loss_pairs), stats[2] = static_cast<double>(pairs);
  return 0;
}

// word2vec.c's loop over a piece of the corpus (see train_tokens): hierarchical softmax with
// negative == 0 (path tables [V, L], syn1 [V-1, D]), negative sampling with negative >= 1 (table,
// syn1neg [V, D]).
int phs_w2v_train_tokens(float* syn0, float* syn1, int64_t V, int64_t D, const int64_t* path_nodes,
                         const int64_t* path_codes, int64_t L, const int32_t* table, int64_t table_size,
                         const int32_t* tokens, int64_t T, const float* keep, int window, int cbow, float alpha0,
                         float alpha1, int threads, int loss_stride, float max_exp, int negative, int seed,
                         double* stats) {
  double loss = 0.0;
  int64_t pairs = 0, loss_pairs = 0, kept = 0;
  const int nt = threads > 0 ? threads : 1;
  const int64_t stride = loss_stride > 0 ? loss_stride : 1;
  const uint64_t s = static_cast<uint64_t>(static_cast<uint32_t>(seed));
  if (negative > 0) {
    const NsOut out{table, table_size, negative};
    train_tokens(syn0, syn1, V, V, D, tokens, T, keep, window, cbow != 0, out, alpha0, alpha1, nt, stride, s, loss,
                 pairs, loss_pairs, kept);
  } else {
    const HsOut out{path_nodes, path_codes, L, max_exp};
    train_tokens(syn0, syn1, V, V - 1, D, tokens, T, keep, window, cbow != 0, out, alpha0, alpha1, nt, stride, s,
                 loss, pairs, loss_pairs, kept);
  }
  stats[0] = loss, stats[1] = static_cast<double>(loss_pairs), stats[2] = static_cast<double>(pairs);
  stats[3] = static_cast<double>(kept);
  return 0;
}

}  // extern "C"
