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
#include <cmath>
#include <vector>

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
inline float path_update(const float* h, float* neu1e, float* syn1, const int64_t* nodes,
                         const int64_t* codes, int64_t L, int64_t D, float alpha, bool with_loss,
                         float max_exp) {
  float nll = 0.f;
  for (int64_t d = 0; d < L && codes[d] >= 0; ++d) {
    float* l2 = syn1 + nodes[d] * D;
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

}  // namespace

std::vector<paddle::Tensor> Word2VecHsStep(paddle::Tensor& syn0, paddle::Tensor& syn1,
                                           const paddle::Tensor& path_nodes,
                                           const paddle::Tensor& path_codes,
                                           const paddle::Tensor& centres,
                                           const paddle::Tensor& contexts, float alpha, bool cbow,
                                           int threads, int loss_stride, float max_exp) {
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
#pragma omp parallel num_threads(threads > 0 ? threads : 1) reduction(+ : loss, pairs, loss_pairs)
  {
    std::vector<float> neu1(D), neu1e(D);
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < N; ++i) {
      const int64_t w = ce[i];
      if (w < 0 || w >= V) continue;
      const int64_t* nodes = pn + w * L;
      const int64_t* codes = pc + w * L;
      const int64_t* ctx = cx + i * K;
      const bool with_loss = i % stride == 0;
      if (!cbow) {
        for (int64_t k = 0; k < K; ++k) {
          const int64_t c = ctx[k];
          if (c < 0 || c >= V) continue;
          float* l1 = s0 + c * D;
          std::fill(neu1e.begin(), neu1e.end(), 0.f);
          loss += path_update(l1, neu1e.data(), s1, nodes, codes, L, D, alpha, with_loss, max_exp);
          axpy(1.f, neu1e.data(), l1, D);
          ++pairs;
          loss_pairs += with_loss;
        }
      } else {
        int64_t count = 0;
        std::fill(neu1.begin(), neu1.end(), 0.f);
        for (int64_t k = 0; k < K; ++k) {
          const int64_t c = ctx[k];
          if (c < 0 || c >= V) continue;
          axpy(1.f, s0 + c * D, neu1.data(), D);
          ++count;
        }
        if (count == 0) continue;
        const float inv = 1.f / static_cast<float>(count);
        for (int64_t j = 0; j < D; ++j) neu1[j] *= inv;
        std::fill(neu1e.begin(), neu1e.end(), 0.f);
        loss += path_update(neu1.data(), neu1e.data(), s1, nodes, codes, L, D, alpha, with_loss, max_exp);
        for (int64_t k = 0; k < K; ++k) {
          const int64_t c = ctx[k];
          if (c < 0 || c >= V) continue;
          axpy(1.f, neu1e.data(), s0 + c * D, D);
        }
        ++pairs;
        loss_pairs += with_loss;
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
    .Attrs({"alpha: float", "cbow: bool", "threads: int", "loss_stride: int", "max_exp: float"})
    .SetInplaceMap({{"Syn0", "Syn0Out"}, {"Syn1", "Syn1Out"}})
    .SetKernelFn(PD_KERNEL(Word2VecHsStep));
