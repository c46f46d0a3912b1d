// Fused hierarchical-softmax training forward and backward (CPU): Paddle custom operators behind
// paddle_hsoftmax.output.HierarchicalSoftmax when it runs in dynamic mode on CPU in float32.
//
// The pure-Paddle layer pads every target's path to the longest one in the batch, gathers the
// node vectors into an [N, L, D] tensor, scores it with one batched product and masks the padding:
// a Huffman tree then costs its longest code, and each step allocates, fills and frees several
// [N, L] and [N, L, D] tensors. These three ops walk each target's real path instead:
//
//   hsoftmax_paths(path_nodes[V, L], path_codes[V, L], target[N]; num_inner, max_length,
//                  ignore_index)
//       -> unique[U] (int64: the inner nodes the batch touches, in order of first use),
//          slots[N, Lb] (int32: 2 * position in unique + branch code, -1 after the path's end),
//          offsets[U + 1], occurrences[nnz] (int32, CSR: the slots n * Lb + l of each unique node,
//          in increasing order)
//       Lb = the longest path among this batch's targets (ignored targets have length 0).
//   hsoftmax_forward(hidden[N, K, D] or [N, D], rows[U, D], bias[V-1] or [0], unique, slots;
//                    threads)
//       -> nll[N, K] (or [N]) = sum over the path of softplus(-s * (h . v + b)),
//          s = +1 right / -1 left,
//          dz[N, K, Lb] = d nll / d (h . v + b) = -s * sigmoid(-s * z)   (0 after the path)
//   hsoftmax_backward(grad_nll, hidden, rows, slots, bias, unique, dz, offsets, occurrences,
//                     scale[N, Ls] or [0]; threads)
//       -> grad_hidden (hidden's shape), grad_rows[U, D] (scaled by scale[n, l] per occurrence,
//          the layer's node_grad_scale), grad_bias[V-1] (unscaled; zero but at the U touched
//          nodes)
//
// rows = weight[unique] is gathered by Paddle's embedding op, so the node gradient is what that
// op gives: a SelectedRows over the U touched rows with sparse=True (flat in V), a dense [V-1, D]
// gradient with sparse=False. The bias (V-1 floats) is read in place and its gradient is dense:
// a gather op of its own cost more (one op and its gradient per step) than V-1 zeros.
// A 2-D hidden [N, D] is K = 1 without the reshapes around the op.
//
// Threads: the forward and the hidden gradient are split over rows n (each row writes only its
// own outputs); the node gradients are split over unique nodes u, each summing its occurrences in
// the fixed CSR order. No two threads write the same float and no sum depends on the thread
// count, so results are bit-for-bit the same for any number of threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "paddle/extension.h"

#ifdef _OPENMP
#include <omp.h>
#endif

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

// Four dot products against one vector h, h read once: four independent sums, so the adds of one
// do not wait for another's (one dot's sum is a chain of D / width dependent adds).
inline void dot4(const float* h, const float* a, const float* b, const float* c, const float* d, int64_t n,
                 float* out) {
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t i = 0; i < n; ++i) {
    const float v = h[i];
    s0 += v * a[i];
    s1 += v * b[i];
    s2 += v * c[i];
    s3 += v * d[i];
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

// y += ga * a + gb * b + gc * c + gd * d: four rows added with one read and write of y
inline void axpy4(float ga, const float* a, float gb, const float* b, float gc, const float* c, float gd,
                  const float* d, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += (ga * a[i] + gb * b[i]) + (gc * c[i] + gd * d[i]);
}

inline int num_threads(int threads) {
#ifdef _OPENMP
  return threads > 0 ? threads : omp_get_max_threads();
#else
  (void)threads;
  return 1;
#endif
}

// Below this many multiply-adds a parallel region costs more than it saves (measured: a region
// costs ~5-20 us on 2 cores; 64k multiply-adds take ~10 us on one).
constexpr int64_t kParallelWork = 1 << 16;

// inner node -> its position among the batch's unique nodes (-1 = not seen); sized to the
// largest tree seen by this thread and reset after each call, so a call costs O(batch), not O(V).
thread_local std::vector<int32_t> t_slot;

}  // namespace

std::vector<paddle::Tensor> HsoftmaxPaths(const paddle::Tensor& path_nodes, const paddle::Tensor& path_codes,
                                          const paddle::Tensor& target, int64_t num_inner, int64_t max_length,
                                          int64_t ignore_index) {
  PD_CHECK(path_nodes.is_cpu() && path_codes.is_cpu() && target.is_cpu(), "hsoftmax_paths runs on CPU tensors");
  PD_CHECK(path_nodes.dtype() == paddle::DataType::INT64 && path_codes.dtype() == paddle::DataType::INT64 &&
               target.dtype() == paddle::DataType::INT64,
           "hsoftmax_paths: path tables and target must be int64");
  PD_CHECK(path_nodes.shape().size() == 2 && path_nodes.shape() == path_codes.shape(),
           "hsoftmax_paths: path_nodes and path_codes must be the same [V, L] table");
  const int64_t V = path_nodes.shape()[0], L = path_nodes.shape()[1];
  const int64_t N = target.numel();
  const int64_t cap = max_length > 0 ? std::min(max_length, L) : L;
  const int64_t* pn = path_nodes.data<int64_t>();
  const int64_t* pc = path_codes.data<int64_t>();
  const int64_t* tg = target.data<int64_t>();

  std::vector<int32_t> length(N, 0);
  int64_t Lb = 1;  // at least one column, so no tensor has a zero-sized axis
  for (int64_t n = 0; n < N; ++n) {
    const int64_t t = tg[n];
    if (t == ignore_index) continue;
    PD_CHECK(t >= 0 && t < V, "hsoftmax: target ", t, " is outside [0, ", V - 1, "]");
    const int64_t* codes = pc + t * L;
    int64_t l = 0;
    while (l < cap && codes[l] >= 0) ++l;
    length[n] = static_cast<int32_t>(l);
    Lb = std::max(Lb, l);
  }

  if (static_cast<int64_t>(t_slot.size()) < num_inner) t_slot.resize(num_inner, -1);
  auto slots = paddle::empty({N, Lb}, paddle::DataType::INT32, paddle::CPUPlace());
  int32_t* sl = slots.data<int32_t>();
  std::vector<int64_t> unique;
  std::vector<int32_t> count;
  unique.reserve(1024);
  count.reserve(1024);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t t = tg[n];
    int32_t* row = sl + n * Lb;
    for (int64_t l = 0; l < length[n]; ++l) {
      const int64_t node = pn[t * L + l];
      PD_CHECK(node >= 0 && node < num_inner, "hsoftmax: path of target ", t, " holds node ", node,
               " outside [0, ", num_inner - 1, "]");
      int32_t u = t_slot[node];
      if (u < 0) {
        u = static_cast<int32_t>(unique.size());
        t_slot[node] = u;
        unique.push_back(node);
        count.push_back(0);
      }
      ++count[u];
      row[l] = 2 * u + (pc[t * L + l] > 0 ? 1 : 0);
    }
    for (int64_t l = length[n]; l < Lb; ++l) row[l] = -1;
  }
  for (int64_t node : unique) t_slot[node] = -1;

  const int64_t U = std::max<int64_t>(static_cast<int64_t>(unique.size()), 1);
  auto unique_t = paddle::empty({U}, paddle::DataType::INT64, paddle::CPUPlace());
  auto offsets = paddle::empty({U + 1}, paddle::DataType::INT32, paddle::CPUPlace());
  int64_t* un = unique_t.data<int64_t>();
  int32_t* off = offsets.data<int32_t>();
  if (unique.empty()) {  // every target ignored: one dummy row (node 0) that no slot uses
    un[0] = 0;
    off[0] = off[1] = 0;
  } else {
    std::copy(unique.begin(), unique.end(), un);
    off[0] = 0;
    for (int64_t u = 0; u < U; ++u) off[u + 1] = off[u] + count[u];
  }
  const int64_t nnz = std::max<int64_t>(off[U], 1);
  auto occurrences = paddle::empty({nnz}, paddle::DataType::INT32, paddle::CPUPlace());
  int32_t* oc = occurrences.data<int32_t>();
  oc[0] = 0;
  std::vector<int32_t> fill(off, off + U);
  for (int64_t n = 0; n < N; ++n) {
    const int32_t* row = sl + n * Lb;
    for (int64_t l = 0; l < length[n]; ++l) oc[fill[row[l] >> 1]++] = static_cast<int32_t>(n * Lb + l);
  }
  return {unique_t, slots, offsets, occurrences};
}

std::vector<paddle::Tensor> HsoftmaxForward(const paddle::Tensor& hidden, const paddle::Tensor& rows,
                                            const paddle::Tensor& bias, const paddle::Tensor& unique,
                                            const paddle::Tensor& slots, const paddle::Tensor& offsets,
                                            const paddle::Tensor& occurrences, const paddle::Tensor& scale,
                                            int threads) {
  (void)offsets, (void)occurrences, (void)scale;  // inputs of the gradient
  PD_CHECK(hidden.is_cpu() && rows.is_cpu(), "hsoftmax_forward runs on CPU tensors");
  PD_CHECK(hidden.dtype() == paddle::DataType::FLOAT32 && rows.dtype() == paddle::DataType::FLOAT32 &&
               bias.dtype() == paddle::DataType::FLOAT32,
           "hsoftmax_forward: hidden, rows and bias must be float32");
  const auto hs = hidden.shape();
  PD_CHECK(hs.size() == 2 || hs.size() == 3, "hsoftmax_forward: hidden must be [N, K, D] or [N, D]");
  const int64_t N = hs[0], K = hs.size() == 3 ? hs[1] : 1, D = hs.back();
  const int64_t U = rows.shape()[0], Lb = slots.shape()[1];
  PD_CHECK(rows.shape()[1] == D && slots.shape()[0] == N && unique.numel() == U, "hsoftmax_forward: shapes disagree");
  const bool has_bias = bias.numel() > 0;
  std::vector<float> bias_rows(has_bias ? U : 0);
  if (has_bias) {
    const float* bp = bias.data<float>();
    const int64_t* un = unique.data<int64_t>();
    for (int64_t u = 0; u < U; ++u) bias_rows[u] = bp[un[u]];
  }
  const float* h = hidden.data<float>();
  const float* w = rows.data<float>();
  const float* b = has_bias ? bias_rows.data() : nullptr;
  const int32_t* sl = slots.data<int32_t>();
  auto nll = hs.size() == 3 ? paddle::empty({N, K}, paddle::DataType::FLOAT32, paddle::CPUPlace())
                             : paddle::empty({N}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto dz = paddle::empty({N, K, Lb}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  float* out = nll.data<float>();
  float* dzp = dz.data<float>();
  const int nt = num_threads(threads);
#pragma omp parallel num_threads(nt) if (N * K * Lb * D > kParallelWork)
  {
    std::vector<float> x(Lb);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const int32_t* row = sl + n * Lb;
      int64_t len = 0;
      while (len < Lb && row[len] >= 0) ++len;
      for (int64_t k = 0; k < K; ++k) {
        const float* hk = h + (n * K + k) * D;
        float* dk = dzp + (n * K + k) * Lb;
        // two passes: the dot products first (independent loads the CPU overlaps), then the
        // transcendentals; the softplus terms' log(1 + e) are summed as the log of their product
        // (each factor is in (1, 2], folded before it could overflow): one log per row, not per
        // node (measured: 80 -> 50 ns per node at D = 128)
        int64_t l = 0;
        for (; l + 4 <= len; l += 4) {
          const int64_t u0 = row[l] >> 1, u1 = row[l + 1] >> 1, u2 = row[l + 2] >> 1, u3 = row[l + 3] >> 1;
          dot4(hk, w + u0 * D, w + u1 * D, w + u2 * D, w + u3 * D, D, x.data() + l);
        }
        for (; l < len; ++l) x[l] = dot(hk, w + (row[l] >> 1) * D, D);
        for (l = 0; l < len; ++l) {
          const float z = x[l] + (has_bias ? b[row[l] >> 1] : 0.f);
          x[l] = (row[l] & 1) ? -z : z;  // -s * z: the softplus argument
        }
        float linear = 0.f, product = 1.f, logs = 0.f;
        for (l = 0; l < len; ++l) {
          const float e = std::exp(-std::fabs(x[l]));
          const float r = 1.f / (1.f + e);
          const float sigmoid = x[l] >= 0.f ? r : e * r;  // sigmoid(-s z)
          linear += std::max(x[l], 0.f);
          product *= 1.f + e;
          if (product > 1e30f) {
            logs += std::log(product);
            product = 1.f;
          }
          dk[l] = (row[l] & 1) ? -sigmoid : sigmoid;  // d softplus(-s z) / dz = -s * sigmoid(-s z)
        }
        for (l = len; l < Lb; ++l) dk[l] = 0.f;
        out[n * K + k] = linear + logs + std::log(product);
      }
    }
  }
  return {nll, dz};
}

std::vector<paddle::Tensor> HsoftmaxBackward(const paddle::Tensor& grad_nll, const paddle::Tensor& hidden,
                                             const paddle::Tensor& rows, const paddle::Tensor& slots,
                                             const paddle::Tensor& bias, const paddle::Tensor& unique,
                                             const paddle::Tensor& dz, const paddle::Tensor& offsets,
                                             const paddle::Tensor& occurrences, const paddle::Tensor& scale,
                                             int threads) {
  PD_CHECK(grad_nll.dtype() == paddle::DataType::FLOAT32 && scale.dtype() == paddle::DataType::FLOAT32,
           "hsoftmax_backward: grad_nll and scale must be float32");
  const auto hs = hidden.shape();
  const int64_t N = hs[0], K = hs.size() == 3 ? hs[1] : 1, D = hs.back();
  const int64_t U = rows.shape()[0], Lb = slots.shape()[1];
  PD_CHECK(grad_nll.numel() == N * K, "hsoftmax_backward: grad_nll must be [N, K]");
  const bool scaled = scale.numel() > 0;
  const int64_t Ls = scaled ? scale.shape()[1] : 0;
  PD_CHECK(!scaled || (scale.shape()[0] == N && Ls >= Lb), "hsoftmax_backward: scale must be [N, >= ", Lb, "]");
  const float* gn = grad_nll.data<float>();
  const float* h = hidden.data<float>();
  const float* w = rows.data<float>();
  const int32_t* sl = slots.data<int32_t>();
  const float* dzp = dz.data<float>();
  const int32_t* off = offsets.data<int32_t>();
  const int32_t* oc = occurrences.data<int32_t>();
  const float* sc = scaled ? scale.data<float>() : nullptr;
  auto grad_hidden = paddle::empty(hs, paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto grad_rows = paddle::empty({U, D}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  const bool has_bias = bias.numel() > 0;  // else a [0] gradient for the [0] input
  auto grad_bias = has_bias ? paddle::zeros(bias.shape(), paddle::DataType::FLOAT32, paddle::CPUPlace())
                            : paddle::empty({0}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  const int64_t* un = unique.data<int64_t>();
  float* gh = grad_hidden.data<float>();
  float* gw = grad_rows.data<float>();
  float* gb = has_bias ? grad_bias.data<float>() : nullptr;
  std::vector<float> g(static_cast<size_t>(N * K * Lb));  // d loss / d z per (n, k, l)
  const int nt = num_threads(threads);
  const bool parallel = N * K * Lb * D > kParallelWork;
#pragma omp parallel num_threads(nt) if (parallel)
  {
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const int32_t* row = sl + n * Lb;
      for (int64_t k = 0; k < K; ++k) {
        const float gnk = gn[n * K + k];
        const float* dk = dzp + (n * K + k) * Lb;
        float* gk = g.data() + (n * K + k) * Lb;
        float* ghk = gh + (n * K + k) * D;
        std::fill(ghk, ghk + D, 0.f);
        int64_t len = 0;
        for (int64_t l = 0; l < Lb; ++l) {
          gk[l] = gnk * dk[l];
          len += row[l] >= 0;  // a path's slots come first, then -1
        }
        int64_t l = 0;
        for (; l + 4 <= len; l += 4) {
          axpy4(gk[l], w + (row[l] >> 1) * D, gk[l + 1], w + (row[l + 1] >> 1) * D, gk[l + 2],
                w + (row[l + 2] >> 1) * D, gk[l + 3], w + (row[l + 3] >> 1) * D, ghk, D);
        }
        for (; l < len; ++l) axpy(gk[l], w + (row[l] >> 1) * D, ghk, D);
      }
    }
    // implicit barrier: g is complete
#pragma omp for schedule(dynamic, 16)
    for (int64_t u = 0; u < U; ++u) {
      float* gwu = gw + u * D;
      std::fill(gwu, gwu + D, 0.f);
      float bias = 0.f;
      int32_t i = off[u];
      if (K == 1) {  // the layer's forward: four occurrences added per pass over the row
        for (; i + 4 <= off[u + 1]; i += 4) {
          float c[4];
          const float* hr[4];
          for (int j = 0; j < 4; ++j) {
            const int64_t n = oc[i + j] / Lb, l = oc[i + j] % Lb;
            const float gz = g[n * Lb + l];
            bias += gz;
            c[j] = (scaled ? sc[n * Ls + l] : 1.f) * gz;
            hr[j] = h + n * D;
          }
          axpy4(c[0], hr[0], c[1], hr[1], c[2], hr[2], c[3], hr[3], gwu, D);
        }
      }
      for (; i < off[u + 1]; ++i) {
        const int64_t n = oc[i] / Lb, l = oc[i] % Lb;
        const float s = scaled ? sc[n * Ls + l] : 1.f;
        for (int64_t k = 0; k < K; ++k) {
          const float gz = g[(n * K + k) * Lb + l];
          bias += gz;
          axpy(s * gz, h + (n * K + k) * D, gwu, D);
        }
      }
      if (has_bias) gb[un[u]] = bias;  // unique nodes: no two u write one entry
    }
  }
  return {grad_hidden, grad_rows, grad_bias};
}

PD_BUILD_OP(hsoftmax_paths)
    .Inputs({"PathNodes", "PathCodes", "Target"})
    .Outputs({"Unique", "Slots", "Offsets", "Occurrences"})
    .Attrs({"num_inner: int64_t", "max_length: int64_t", "ignore_index: int64_t"})
    .SetKernelFn(PD_KERNEL(HsoftmaxPaths));

PD_BUILD_OP(hsoftmax_forward)
    .Inputs({"Hidden", "Rows", "Bias", "Unique", "Slots", "Offsets", "Occurrences", "Scale"})
    .Outputs({"Nll", "Dz"})
    .Attrs({"threads: int"})
    .SetKernelFn(PD_KERNEL(HsoftmaxForward));

PD_BUILD_GRAD_OP(hsoftmax_forward)
    .Inputs({paddle::Grad("Nll"), "Hidden", "Rows", "Slots", "Bias", "Unique", "Dz", "Offsets", "Occurrences",
             "Scale"})
    .Outputs({paddle::Grad("Hidden"), paddle::Grad("Rows"), paddle::Grad("Bias")})
    .Attrs({"threads: int"})
    .SetKernelFn(PD_KERNEL(HsoftmaxBackward));
