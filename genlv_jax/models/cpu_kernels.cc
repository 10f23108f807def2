// Compiled kernels for XLA:CPU, float32 NHWC, through the XLA FFI; genlv_jax/models/
// cpu_kernels.py compiles this file on first use. Each is something XLA:CPU's code generator
// makes several times slower than its share of the FLOPs (BENCHMARKS.md, per-kernel table):
// - the depthwise 3x3 convolution (zero padding 1, stride 1), forward and backward: autodiff
//   of nine shifted multiply-adds gives nine column reductions over every pixel plus eight
//   materialised shifted copies of the cotangent; here the forward pass reads each input row
//   three times from cache and the backward pass computes the input gradient and all nine
//   kernel-gradient taps in one sweep;
// - the same convolution fused with GDFN's exact-GELU gate, whose 2h-channel output never
//   reaches memory (the backward pass recomputes it row by row);
// - the dense 3x3 convolution's kernel gradient, as register-blocked outer products;
// - LayerNorm's backward pass, from x alone.
//
// Work is split into fixed chunks of image rows that depend only on the shapes, and the
// per-chunk partial gradients are summed in chunk order, so results are bitwise reproducible
// whatever the number of threads.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <immintrin.h>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Channels per register block: one vector register. With AVX2 a 16-lane block would be a pair
// of registers and the gated kernel's two blocks of nine taps would no longer fit in the 16.
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
#else
constexpr int64_t kLanes = 8;
#endif
constexpr int64_t kMaxChunks = 64;  // upper bound on row chunks (partial kernel gradients)

struct Geometry {
  int64_t batch, height, width, channels;
  int64_t rows() const { return batch * height; }
  int64_t row_size() const { return width * channels; }
};

// Runs body(chunk) for every chunk in [0, num_chunks), on the calling thread and on XLA's
// intra-op pool. The caller always takes part, so the call completes even if the pool never
// runs the helpers (or runs them after the call returned: they then find no chunk left and
// touch nothing but the shared counters).
template <typename Body>
void ParallelFor(ffi::ThreadPool& pool, int64_t num_chunks, const Body& body) {
  struct Counters {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> active{0};
  };
  auto counters = std::make_shared<Counters>();
  const Body* body_ptr = &body;
  auto work = [counters, num_chunks, body_ptr]() {
    counters->active.fetch_add(1);
    for (int64_t c = counters->next.fetch_add(1); c < num_chunks; c = counters->next.fetch_add(1)) {
      (*body_ptr)(c);
    }
    counters->active.fetch_sub(1);
  };
  // The caller plus num_threads - 1 helpers: as many workers as the pool has threads, so
  // compute-bound kernels never share a core with one of their own workers.
  const int64_t helpers =
      std::max<int64_t>(0, std::min<int64_t>(pool.num_threads() - 1, num_chunks - 1));
  for (int64_t i = 0; i < helpers; ++i) pool.Schedule(decltype(work)(work));
  work();
  while (counters->active.load() != 0) std::this_thread::yield();
}

// The three input rows h-1, h, h+1 of image b; rows outside the image read `zero_row`.
void NeighbourRows(const float* in, const float* zero_row, const Geometry& g, int64_t b,
                   int64_t h, const float* rows[3]) {
  for (int i = 0; i < 3; ++i) {
    const int64_t hh = h + i - 1;
    rows[i] = (hh < 0 || hh >= g.height) ? zero_row : in + (b * g.height + hh) * g.row_size();
  }
}

// kLanes floats as one value: GCC/Clang vector extensions compile it to one AVX-512 or AVX2
// register without intrinsics, and keep accumulators in registers.
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

inline Vec Load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void Store(float* p, Vec v) { std::memcpy(p, &v, sizeof(v)); }

// The ISA's broadcast: GCC compiles the generic `Vec{} + x` to a scalar add before the
// broadcast, which cannot become a broadcast load and costs the conv kernel a third of its speed.
inline Vec Broadcast(float x) {
#if defined(__AVX512F__)
  return (Vec)_mm512_set1_ps(x);
#elif defined(__AVX__)
  return (Vec)_mm256_set1_ps(x);
#else
  return Vec{} + x;
#endif
}

// Lanes [keep_from, kLanes) of v, zeros below.
inline Vec KeepFrom(Vec v, int keep_from) {
  if (keep_from == 0) return v;
  Vec lane;
  for (int64_t l = 0; l < kLanes; ++l) lane[l] = static_cast<float>(l);
  return lane >= static_cast<float>(keep_from) ? v : Vec{};
}

// Calls f(c0, keep_from) for blocks of kLanes channels covering [0, n): whole blocks with
// keep_from 0, then, when n is not a multiple of kLanes, one block ending at n that overlaps
// the last whole one; its lanes below keep_from belong to that block (outputs written twice
// are equal, but sums must skip them). Returns the first channel left to a scalar loop: n,
// or 0 when n < kLanes. Without the overlapping block, a width such as GDFN's 2 * 255 would
// leave 14 channels to scalar code that costs as much as all the vector blocks together.
template <typename F>
inline int64_t ForEachBlock(int64_t n, F f) {
  int64_t c0 = 0;
  for (; c0 + kLanes <= n; c0 += kLanes) f(c0, 0);
  if (c0 == n) return n;
  if (c0 == 0) return 0;
  f(n - kLanes, static_cast<int>(c0 - (n - kLanes)));
  return n;
}

// The kernel's nine taps for channels [c0, c0 + kLanes).
struct KernelBlock {
  Vec taps[9];
  KernelBlock(const float* kernel, int64_t C, int64_t c0) {
    for (int t = 0; t < 9; ++t) taps[t] = Load(kernel + t * C + c0);
  }
};

// sum_{i,j} rows[i][(w + j - 1) * C + c0 + lane] * k[i, j, lane] for an interior w (all nine
// taps inside the row: no branches, so the taps unroll into nine FMAs).
inline Vec ConvolveInterior(const float* const rows[3], const KernelBlock& k, int64_t w,
                            int64_t C, int64_t c0) {
  Vec acc = {};
  for (int i = 0; i < 3; ++i) {
    const float* s = rows[i] + (w - 1) * C + c0;
    acc += Load(s) * k.taps[i * 3] + Load(s + C) * k.taps[i * 3 + 1] +
           Load(s + 2 * C) * k.taps[i * 3 + 2];
  }
  return acc;
}

// The same at any w, skipping taps outside the row (the first and last pixels).
inline Vec ConvolveEdge(const float* const rows[3], const KernelBlock& k, int64_t w, int64_t W,
                        int64_t C, int64_t c0) {
  Vec acc = {};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const int64_t ww = w + j - 1;
      if (ww >= 0 && ww < W) acc += Load(rows[i] + ww * C + c0) * k.taps[i * 3 + j];
    }
  }
  return acc;
}

// The convolution at pixel w of the row, for channels [c0, c0 + kLanes).
inline Vec Convolve(const float* const rows[3], const KernelBlock& k, int64_t w, int64_t W,
                    int64_t C, int64_t c0) {
  return (w == 0 || w == W - 1) ? ConvolveEdge(rows, k, w, W, C, c0)
                                : ConvolveInterior(rows, k, w, C, c0);
}

// Pixels per tile of a row. Every channel block sweeps a tile before the next tile starts, so
// the tile's three input rows (3 x 10 pixels x C floats) stay in cache from one block to the
// next; a block sweeping whole rows would stream them from memory once per block as soon as
// three rows outgrow L2 (C ~ 1000 at 64 pixels, GDFN's width at the latent level).
constexpr int64_t kTileWidth = 32;

// Calls f(w_begin, w_end) for the tiles of a row of W pixels, left to right.
template <typename F>
inline void ForEachTile(int64_t W, F f) {
  for (int64_t w0 = 0; w0 < W; w0 += kTileWidth) f(w0, std::min(W, w0 + kTileWidth));
}

// The same for one channel c (the channels left over after whole blocks).
inline float ConvolvePoint(const float* const rows[3], const float* kernel, int64_t w,
                           int64_t W, int64_t C, int64_t c) {
  float acc = 0.f;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const int64_t ww = w + j - 1;
      if (ww >= 0 && ww < W) acc += rows[i][ww * C + c] * kernel[(i * 3 + j) * C + c];
    }
  }
  return acc;
}

// out_row[w, c] = sum_{i,j} rows[i][w + j - 1, c] * kernel[i, j, c] (zero outside the row).
// Blocks of kLanes channels sweep the row with the block's nine kernel vectors in registers.
void ConvolveRow(const float* const rows[3], const float* kernel, float* __restrict__ out_row,
                 int64_t W, int64_t C) {
  int64_t scalar_from = C;
  ForEachTile(W, [&](int64_t w0, int64_t w1) {
    scalar_from = ForEachBlock(C, [&](int64_t c0, int) {
      const KernelBlock k(kernel, C, c0);
      for (int64_t w = w0; w < w1; ++w) Store(out_row + w * C + c0, Convolve(rows, k, w, W, C, c0));
    });
  });
  for (int64_t c = scalar_from; c < C; ++c) {
    for (int64_t w = 0; w < W; ++w) out_row[w * C + c] = ConvolvePoint(rows, kernel, w, W, C, c);
  }
}

// erf in float32 as XLA computes it (a rational approximation, |error| < 2e-7), on a vector.
inline Vec Erf(Vec x) {
  constexpr float kClamp = 3.7439211627767994f;  // erfinv(1 - 2^-23): erf is +-1 beyond
  x = x > kClamp ? Broadcast(kClamp) : x;
  x = x < -kClamp ? Broadcast(-kClamp) : x;
  const Vec x2 = x * x;
  Vec p = Broadcast(0.00022905065861350646f);
  p = p * x2 + 0.0034082910107109506f;
  p = p * x2 + 0.050955695062380861f;
  p = p * x2 + 0.18520832239976145f;
  p = p * x2 + 1.128379143519084f;
  Vec q = Broadcast(-1.1791602954361697e-7f);
  q = q * x2 + 0.000023547966471313185f;
  q = q * x2 + 0.0010179625278914885f;
  q = q * x2 + 0.014070470171167667f;
  q = q * x2 + 0.11098505178285362f;
  q = q * x2 + 0.49746925110067538f;
  q = q * x2 + 1.0f;
  return x * p / q;
}

inline float Erf(float x) {
  Vec v = Erf(Broadcast(x));
  return v[0];
}

// GDFN's gate on the convolution's output: gelu(gate) * value, PyTorch's exact (erf) GELU.
template <typename T>
inline T GeluGate(T gate, T value) {
  return 0.5f * gate * (1.f + Erf(gate * 0.70710678118654752f)) * value;
}

// out_row[w, c] = GeluGate(conv[w, c] + bias[c], conv[w, c + h] + bias[c + h]) for c < h = C/2:
// the convolution never leaves registers.
void GatedConvolveRow(const float* in, const float* kernel, const float* bias,
                      const float* zero_row, float* __restrict__ out_row, const Geometry& g,
                      int64_t b, int64_t h) {
  const int64_t C = g.channels, W = g.width, half = C / 2;
  const float* rows[3];
  NeighbourRows(in, zero_row, g, b, h, rows);
  int64_t scalar_from = half;
  ForEachTile(W, [&](int64_t w0, int64_t w1) {
    scalar_from = ForEachBlock(half, [&](int64_t c0, int) {
      const KernelBlock k_gate(kernel, C, c0), k_value(kernel, C, c0 + half);
      const Vec b_gate = Load(bias + c0), b_value = Load(bias + c0 + half);
      for (int64_t w = w0; w < w1; ++w) {
        const Vec gate = Convolve(rows, k_gate, w, W, C, c0) + b_gate;
        const Vec value = Convolve(rows, k_value, w, W, C, c0 + half) + b_value;
        Store(out_row + w * half + c0, GeluGate(gate, value));
      }
    });
  });
  for (int64_t c0 = scalar_from; c0 < half; ++c0) {
    for (int64_t w = 0; w < W; ++w) {
      const float gate = ConvolvePoint(rows, kernel, w, W, C, c0) + bias[c0];
      const float value = ConvolvePoint(rows, kernel, w, W, C, c0 + half) + bias[c0 + half];
      out_row[w * half + c0] = GeluGate(gate, value);
    }
  }
}

// partial[i, j, c] += sum_w rows[i][w + j - 1, c] * dy_row[w, c] (zero outside the row),
// with a block's nine accumulators held in registers across a tile.
void AccumulateKernelGradRow(const float* const rows[3], const float* dy_row,
                             float* __restrict__ partial, int64_t W, int64_t C) {
  int64_t scalar_from = C;
  ForEachTile(W, [&](int64_t w0, int64_t w1) {
    scalar_from = ForEachBlock(C, [&](int64_t c0, int keep_from) {
      Vec acc[9] = {};
      for (int64_t w = w0; w < w1; ++w) {
        const Vec d = Load(dy_row + w * C + c0);
        if (w == 0 || w == W - 1) {
          for (int i = 0; i < 3; ++i) {
            for (int j = 0; j < 3; ++j) {
              const int64_t ww = w + j - 1;
              if (ww >= 0 && ww < W) acc[i * 3 + j] += Load(rows[i] + ww * C + c0) * d;
            }
          }
          continue;
        }
        for (int i = 0; i < 3; ++i) {
          const float* s = rows[i] + (w - 1) * C + c0;
          acc[i * 3] += Load(s) * d;
          acc[i * 3 + 1] += Load(s + C) * d;
          acc[i * 3 + 2] += Load(s + 2 * C) * d;
        }
      }
      for (int t = 0; t < 9; ++t) {
        Store(partial + t * C + c0, Load(partial + t * C + c0) + KeepFrom(acc[t], keep_from));
      }
    });
  });
  for (int64_t c0 = scalar_from; c0 < C; ++c0) {
    for (int64_t w = 0; w < W; ++w) {
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          const int64_t ww = w + j - 1;
          if (ww < 0 || ww >= W) continue;
          partial[(i * 3 + j) * C + c0] += rows[i][ww * C + c0] * dy_row[w * C + c0];
        }
      }
    }
  }
}

ffi::Error CheckShapes(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel, Geometry* g) {
  auto xd = x.dimensions();
  auto kd = kernel.dimensions();
  if (xd.size() != 4) return ffi::Error::InvalidArgument("depthwise conv: x must be NHWC");
  if (kd.size() != 3 || kd[0] != 3 || kd[1] != 3 || kd[2] != xd[3]) {
    return ffi::Error::InvalidArgument("depthwise conv: kernel must be (3, 3, C)");
  }
  *g = Geometry{xd[0], xd[1], xd[2], xd[3]};
  return ffi::Error::Success();
}

int64_t NumChunks(const Geometry& g) {
  return std::max<int64_t>(1, std::min(g.rows(), kMaxChunks));
}

// The kernel flipped in both spatial axes: the input gradient is the same convolution with it.
std::vector<float> FlippedKernel(const float* kernel, int64_t C) {
  std::vector<float> flipped(9 * C);
  for (int t = 0; t < 9; ++t) {
    std::copy(kernel + (8 - t) * C, kernel + (9 - t) * C, flipped.data() + t * C);
  }
  return flipped;
}

ffi::Error DepthwiseConv3x3Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                                   ffi::Buffer<ffi::F32> kernel, ffi::ResultBuffer<ffi::F32> y) {
  Geometry g;
  if (ffi::Error e = CheckShapes(x, kernel, &g); e.failure()) return e;
  const float* xp = x.typed_data();
  const float* kp = kernel.typed_data();
  float* yp = y->typed_data();
  const std::vector<float> zero_row(g.row_size(), 0.f);
  const int64_t chunks = NumChunks(g);
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    const int64_t begin = g.rows() * chunk / chunks, end = g.rows() * (chunk + 1) / chunks;
    for (int64_t r = begin; r < end; ++r) {
      const float* rows[3];
      NeighbourRows(xp, zero_row.data(), g, r / g.height, r % g.height, rows);
      ConvolveRow(rows, kp, yp + r * g.row_size(), g.width, g.channels);
    }
  });
  return ffi::Error::Success();
}

// y = GeluGate(conv(x) + bias) over the two channel halves: GDFN's depthwise conv and gate in
// one pass, for inference (training differentiates the unfused form).
ffi::Error GatedDepthwiseConv3x3Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                                        ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::F32> bias,
                                        ffi::ResultBuffer<ffi::F32> y) {
  Geometry g;
  if (ffi::Error e = CheckShapes(x, kernel, &g); e.failure()) return e;
  if (g.channels % 2 != 0 || bias.element_count() != static_cast<size_t>(g.channels)) {
    return ffi::Error::InvalidArgument("gated depthwise conv: C must be even, bias (C,)");
  }
  const float* xp = x.typed_data();
  const float* kp = kernel.typed_data();
  const float* bp = bias.typed_data();
  float* yp = y->typed_data();
  const std::vector<float> zero_row(g.row_size(), 0.f);
  const int64_t chunks = NumChunks(g);
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    const int64_t begin = g.rows() * chunk / chunks, end = g.rows() * (chunk + 1) / chunks;
    for (int64_t r = begin; r < end; ++r) {
      GatedConvolveRow(xp, kp, bp, zero_row.data(), yp + r * g.row_size() / 2, g, r / g.height,
                       r % g.height);
    }
  });
  return ffi::Error::Success();
}

// dx = the same convolution of dy with the kernel flipped in both spatial axes;
// dkernel[i, j, c] = sum_{b,h,w} x[b, h + i - 1, w + j - 1, c] * dy[b, h, w, c].
// Sums per-chunk partials (chunks x n floats) in chunk order, in double: the result does not
// depend on which thread ran which chunk.
void SumPartials(const std::vector<float>& partials, int64_t chunks, int64_t n, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    double sum = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partials[chunk * n + t];
    out[t] = static_cast<float>(sum);
  }
}

// dx = the same convolution of dy with the kernel flipped in both spatial axes;
// dkernel[i, j, c] = sum_{b,h,w} x[b, h + i - 1, w + j - 1, c] * dy[b, h, w, c].
void ConvolutionBackward(ffi::ThreadPool& pool, const Geometry& g, const float* x,
                         const float* kernel, const float* dy, float* dx, float* dkernel) {
  const int64_t C = g.channels;
  const std::vector<float> flipped = FlippedKernel(kernel, C);
  const int64_t chunks = NumChunks(g);
  std::vector<float> partials(chunks * 9 * C, 0.f);
  const std::vector<float> zero_row(g.row_size(), 0.f);
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    const int64_t begin = g.rows() * chunk / chunks, end = g.rows() * (chunk + 1) / chunks;
    float* partial = partials.data() + chunk * 9 * C;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / g.height, h = r % g.height;
      const float* dy_rows[3];
      const float* x_rows[3];
      NeighbourRows(dy, zero_row.data(), g, b, h, dy_rows);
      NeighbourRows(x, zero_row.data(), g, b, h, x_rows);
      ConvolveRow(dy_rows, flipped.data(), dx + r * g.row_size(), g.width, g.channels);
      AccumulateKernelGradRow(x_rows, dy_rows[1], partial, g.width, g.channels);
    }
  });
  SumPartials(partials, chunks, 9 * C, dkernel);
}

ffi::Error DepthwiseConv3x3Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                                    ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::F32> dy,
                                    ffi::ResultBuffer<ffi::F32> dx,
                                    ffi::ResultBuffer<ffi::F32> dkernel) {
  Geometry g;
  if (ffi::Error e = CheckShapes(x, kernel, &g); e.failure()) return e;
  if (dy.element_count() != x.element_count()) {
    return ffi::Error::InvalidArgument("depthwise conv: dy must have the shape of x");
  }
  ConvolutionBackward(pool, g, x.typed_data(), kernel.typed_data(), dy.typed_data(),
                      dx->typed_data(), dkernel->typed_data());
  return ffi::Error::Success();
}

// e^x for x <= 0 on a vector (Cephes' expf: range reduction by ln 2 and a degree-6 polynomial,
// relative error ~1e-7); results below ~1e-38 are not needed here and are clamped.
inline Vec ExpNonPositive(Vec x) {
  x = x < -87.0f ? Broadcast(-87.0f) : x;
  typedef int32_t VecI __attribute__((vector_size(kLanes * sizeof(int32_t))));
  const Vec n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round(x / ln 2)
  const Vec r = x - n * 0.693359375f + n * 2.12194440e-4f;
  Vec p = Broadcast(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const VecI bits = (__builtin_convertvector(n, VecI) + 127) << 23;  // 2^n
  Vec scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// Gradients of out = gelu(gate) * value: d_gate = dout * value * gelu'(gate),
// d_value = dout * gelu(gate), with gelu'(a) = Phi(a) + a * phi(a).
inline void GeluGateBackward(Vec gate, Vec value, Vec dout, Vec* d_gate, Vec* d_value) {
  const Vec cdf = 0.5f * (1.f + Erf(gate * 0.70710678118654752f));
  const Vec pdf = ExpNonPositive(-0.5f * gate * gate) * 0.39894228040143268f;
  *d_gate = dout * value * (cdf + gate * pdf);
  *d_value = dout * gate * cdf;
}

// One row of the pre-gate gradient: dy_row = d(gelu(gate) * value) / d(gate, value) for image
// row r, with the pre-gate convolution recomputed from x (cheaper than keeping it from the
// forward pass). Adds the row to db when db is not null.
void GateGradientRow(const float* x, const float* kernel, const float* bias, const float* dout,
                     const float* zero_row, const Geometry& g, int64_t r,
                     float* __restrict__ dy_row, float* db) {
  const int64_t C = g.channels, W = g.width, half = C / 2;
  const float* rows[3];
  NeighbourRows(x, zero_row, g, r / g.height, r % g.height, rows);
  const float* dout_row = dout + r * W * half;
  int64_t scalar_from = half;
  ForEachTile(W, [&](int64_t w0, int64_t w1) {
    scalar_from = ForEachBlock(half, [&](int64_t c0, int keep_from) {
      const KernelBlock k_gate(kernel, C, c0), k_value(kernel, C, c0 + half);
      const Vec b_gate = Load(bias + c0), b_value = Load(bias + c0 + half);
      Vec db_gate = {}, db_value = {};
      for (int64_t w = w0; w < w1; ++w) {
        const Vec gate = b_gate + Convolve(rows, k_gate, w, W, C, c0);
        const Vec value = b_value + Convolve(rows, k_value, w, W, C, c0 + half);
        Vec d_gate, d_value;
        GeluGateBackward(gate, value, Load(dout_row + w * half + c0), &d_gate, &d_value);
        Store(dy_row + w * C + c0, d_gate);
        Store(dy_row + w * C + c0 + half, d_value);
        db_gate += d_gate;
        db_value += d_value;
      }
      if (db != nullptr) {
        Store(db + c0, Load(db + c0) + KeepFrom(db_gate, keep_from));
        Store(db + c0 + half, Load(db + c0 + half) + KeepFrom(db_value, keep_from));
      }
    });
  });
  for (int64_t c0 = scalar_from; c0 < half; ++c0) {
    for (int64_t w = 0; w < W; ++w) {
      const Vec gate = Broadcast(ConvolvePoint(rows, kernel, w, W, C, c0) + bias[c0]);
      const Vec value =
          Broadcast(ConvolvePoint(rows, kernel, w, W, C, c0 + half) + bias[c0 + half]);
      Vec d_gate, d_value;
      GeluGateBackward(gate, value, Broadcast(dout_row[w * half + c0]), &d_gate, &d_value);
      dy_row[w * C + c0] = d_gate[0];
      dy_row[w * C + c0 + half] = d_value[0];
      if (db != nullptr) {
        db[c0] += d_gate[0];
        db[c0 + half] += d_value[0];
      }
    }
  }
}

// For GDFN's conv + gate: dx, dkernel, dbias from x and dout alone, in one sweep over the rows.
// The pre-gate gradient dy lives in a ring of three rows per chunk (rows r - 1, r, r + 1: what
// the input gradient of row r reads), so it never goes to memory; each chunk recomputes the
// two rows beyond its ends, which is why chunks here are at least 16 rows where possible.
ffi::Error GatedDepthwiseConv3x3Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                                         ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::F32> bias,
                                         ffi::Buffer<ffi::F32> dout,
                                         ffi::ResultBuffer<ffi::F32> dx,
                                         ffi::ResultBuffer<ffi::F32> dkernel,
                                         ffi::ResultBuffer<ffi::F32> dbias) {
  Geometry g;
  if (ffi::Error e = CheckShapes(x, kernel, &g); e.failure()) return e;
  const int64_t C = g.channels;
  if (C % 2 != 0 || bias.element_count() != static_cast<size_t>(C) ||
      2 * dout.element_count() != x.element_count()) {
    return ffi::Error::InvalidArgument("gated depthwise conv: C even, bias (C,), dout C/2 wide");
  }
  const float* xp = x.typed_data();
  const float* kp = kernel.typed_data();
  const float* bp = bias.typed_data();
  const float* doutp = dout.typed_data();
  float* dxp = dx->typed_data();
  const std::vector<float> flipped = FlippedKernel(kp, C);
  const int64_t rows = g.rows();
  const int64_t chunks =
      std::max<int64_t>(1, std::min<int64_t>(rows, std::clamp<int64_t>(rows / 16, 2, 16)));
  std::vector<float> kernel_partials(chunks * 9 * C, 0.f), bias_partials(chunks * C, 0.f);
  const std::vector<float> zero_row(g.row_size(), 0.f);
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    const int64_t begin = rows * chunk / chunks, end = rows * (chunk + 1) / chunks;
    std::vector<float> ring(3 * g.row_size());
    int64_t ring_rows[3] = {-1, -1, -1};
    // Row q of dy (q inside this chunk's image rows or one beyond), computed at most once.
    auto dy_row = [&](int64_t q) -> const float* {
      float* slot = ring.data() + (q % 3) * g.row_size();
      if (ring_rows[q % 3] != q) {
        const bool own = q >= begin && q < end;  // halo rows belong to the neighbouring chunk
        GateGradientRow(xp, kp, bp, doutp, zero_row.data(), g, q, slot,
                        own ? bias_partials.data() + chunk * C : nullptr);
        ring_rows[q % 3] = q;
      }
      return slot;
    };
    float* partial = kernel_partials.data() + chunk * 9 * C;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t h = r % g.height;
      const float* dy_rows[3] = {h > 0 ? dy_row(r - 1) : zero_row.data(), dy_row(r),
                                 h + 1 < g.height ? dy_row(r + 1) : zero_row.data()};
      const float* x_rows[3];
      NeighbourRows(xp, zero_row.data(), g, r / g.height, h, x_rows);
      ConvolveRow(dy_rows, flipped.data(), dxp + r * g.row_size(), g.width, C);
      AccumulateKernelGradRow(x_rows, dy_rows[1], partial, g.width, C);
    }
  });
  SumPartials(kernel_partials, chunks, 9 * C, dkernel->typed_data());
  SumPartials(bias_partials, chunks, C, dbias->typed_data());
  return ffi::Error::Success();
}

// ---------------------------------------------------------------------------------------------
// Dense 3x3 convolution (zero padding 1, stride 1): the kernel gradient
//   dkernel[i, j, c, d] = sum_{b,h,w} x[b, h + i - 1, w + j - 1, c] * dy[b, h, w, d],
// nine (C_in x C_out) products summed over every pixel. XLA:CPU computes it as a convolution
// with batch and feature dimensions swapped, 5-8x slower than its own forward pass; here each
// tap is a register-blocked outer-product sweep over a row (4 input channels x 4 vectors of
// output channels of accumulators, the GEMM micro-kernel shape).

// The image rows [row_begin, row_end) of a chunk, with the geometry of x and dy.
struct RowRange {
  int64_t row_begin, row_end, H, W, Cin, Cout;
};

// tap[c0 : c0 + CB, d0 : d0 + 16 NV] += sum over the rows and pixels of
// x[b, h + i - 1, w + j - 1, c] (outer) dy[b, h, w, d]: CB x NV accumulators stay in registers
// for the whole chunk.
// keep_from > 0 marks the tail block of a C_out that is not a multiple of kLanes: it starts at
// C_out - kLanes, overlapping the last whole block, and only its lanes from keep_from on are
// added to tap.
template <int CB, int NV>
void OuterProductSweep(const float* x, const float* dy, float* tap, const RowRange& rr, int i,
                       int j, int64_t c0, int64_t d0, int keep_from) {
  const int64_t H = rr.H, W = rr.W, Cin = rr.Cin, Cout = rr.Cout;
  const int64_t w_begin = std::max<int64_t>(0, 1 - j), w_end = std::min<int64_t>(W, W + 1 - j);
  Vec acc[CB][NV] = {};
  for (int cc = 0; cc < CB && keep_from == 0; ++cc) {
    for (int v = 0; v < NV; ++v) acc[cc][v] = Load(tap + (c0 + cc) * Cout + d0 + v * kLanes);
  }
  for (int64_t r = rr.row_begin; r < rr.row_end; ++r) {
    const int64_t b = r / H, h = r % H, hh = h + i - 1;
    if (hh < 0 || hh >= H) continue;
    const float* x_row = x + (b * H + hh) * W * Cin + (j - 1) * Cin + c0;
    const float* dy_row = dy + r * W * Cout + d0;
    for (int64_t w = w_begin; w < w_end; ++w) {
      Vec dv[NV];
      for (int v = 0; v < NV; ++v) dv[v] = Load(dy_row + w * Cout + v * kLanes);
      const float* xs = x_row + w * Cin;
      for (int cc = 0; cc < CB; ++cc) {
        const Vec xb = Broadcast(xs[cc]);
        for (int v = 0; v < NV; ++v) acc[cc][v] += xb * dv[v];
      }
    }
  }
  for (int cc = 0; cc < CB; ++cc) {
    if (keep_from > 0) {
      for (int l = keep_from; l < kLanes; ++l) tap[(c0 + cc) * Cout + d0 + l] += acc[cc][0][l];
      continue;
    }
    for (int v = 0; v < NV; ++v) Store(tap + (c0 + cc) * Cout + d0 + v * kLanes, acc[cc][v]);
  }
}

template <int CB>
void OuterProductSweepNV(int nv, const float* x, const float* dy, float* tap, const RowRange& rr,
                         int i, int j, int64_t c0, int64_t d0, int keep_from) {
  switch (nv) {
    case 4: return OuterProductSweep<CB, 4>(x, dy, tap, rr, i, j, c0, d0, keep_from);
    case 3: return OuterProductSweep<CB, 3>(x, dy, tap, rr, i, j, c0, d0, keep_from);
    case 2: return OuterProductSweep<CB, 2>(x, dy, tap, rr, i, j, c0, d0, keep_from);
    default: return OuterProductSweep<CB, 1>(x, dy, tap, rr, i, j, c0, d0, keep_from);
  }
}

// One (nv vectors, cb input channels) block; nv 1 with keep_from > 0 for the tail.
void OuterProductBlock(int cb, int nv, const float* x, const float* dy, float* tap,
                       const RowRange& rr, int i, int j, int64_t c0, int64_t d0, int keep_from) {
  switch (cb) {
    case 4: return OuterProductSweepNV<4>(nv, x, dy, tap, rr, i, j, c0, d0, keep_from);
    case 3: return OuterProductSweepNV<3>(nv, x, dy, tap, rr, i, j, c0, d0, keep_from);
    case 2: return OuterProductSweepNV<2>(nv, x, dy, tap, rr, i, j, c0, d0, keep_from);
    default: return OuterProductSweepNV<1>(nv, x, dy, tap, rr, i, j, c0, d0, keep_from);
  }
}

// Adds the rows' contribution to partial (3, 3, Cin, Cout).
void AccumulateConvKernelGradTile(const float* x, const float* dy, float* partial,
                                  const RowRange& rr) {
  const int64_t H = rr.H, W = rr.W, Cin = rr.Cin, Cout = rr.Cout;
  const int64_t vectors = Cout / kLanes;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      float* tap = partial + (i * 3 + j) * Cin * Cout;
      const int64_t tail = Cout - vectors * kLanes;
      for (int64_t c0 = 0; c0 < Cin; c0 += 4) {
        const int cb = static_cast<int>(std::min<int64_t>(4, Cin - c0));
        for (int64_t v0 = 0; v0 < vectors; v0 += 4) {
          const int nv = static_cast<int>(std::min<int64_t>(4, vectors - v0));
          OuterProductBlock(cb, nv, x, dy, tap, rr, i, j, c0, v0 * kLanes, 0);
        }
        if (tail > 0 && vectors > 0) {
          OuterProductBlock(cb, 1, x, dy, tap, rr, i, j, c0, Cout - kLanes,
                            static_cast<int>(kLanes - tail));
        }
      }
      if (vectors > 0) continue;
      // Fewer than kLanes output channels: one at a time.
      const int64_t w_begin = std::max<int64_t>(0, 1 - j), w_end = std::min<int64_t>(W, W + 1 - j);
      for (int64_t r = rr.row_begin; r < rr.row_end; ++r) {
        const int64_t b = r / H, h = r % H, hh = h + i - 1;
        if (hh < 0 || hh >= H) continue;
        const float* x_row = x + (b * H + hh) * W * Cin;
        const float* dy_row = dy + r * W * Cout;
        for (int64_t d = 0; d < Cout; ++d) {
          for (int64_t c = 0; c < Cin; ++c) {
            float acc = 0.f;
            for (int64_t w = w_begin; w < w_end; ++w) {
              acc += x_row[(w + j - 1) * Cin + c] * dy_row[w * Cout + d];
            }
            tap[c * Cout + d] += acc;
          }
        }
      }
    }
  }
}

// The same over a chunk, in tiles of rows of about 256 pixels: a tile of x and dy stays in
// cache while every (tap, channel block) pair sweeps it, like the K blocking of a GEMM.
void AccumulateConvKernelGrad(const float* x, const float* dy, float* partial, const RowRange& rr) {
  const int64_t tile_rows = std::max<int64_t>(1, 256 / rr.W);
  for (int64_t r = rr.row_begin; r < rr.row_end; r += tile_rows) {
    RowRange tile = rr;
    tile.row_begin = r;
    tile.row_end = std::min(rr.row_end, r + tile_rows);
    AccumulateConvKernelGradTile(x, dy, partial, tile);
  }
}

ffi::Error Conv3x3KernelGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                             ffi::Buffer<ffi::F32> dy, ffi::ResultBuffer<ffi::F32> dkernel) {
  auto xd = x.dimensions();
  auto yd = dy.dimensions();
  if (xd.size() != 4 || yd.size() != 4 || xd[0] != yd[0] || xd[1] != yd[1] || xd[2] != yd[2]) {
    return ffi::Error::InvalidArgument("conv3x3 kernel grad: x and dy must be NHWC, same N, H, W");
  }
  const int64_t B = xd[0], H = xd[1], W = xd[2], Cin = xd[3], Cout = yd[3];
  const int64_t rows = B * H, n = 9 * Cin * Cout;
  // Each chunk holds a whole (3, 3, Cin, Cout) partial, so chunks are sized by pixels (2048
  // and more each, at most 16), which keeps the partials small against the work.
  const int64_t chunks = std::max<int64_t>(
      1, std::min(rows, std::clamp<int64_t>(B * H * W / 2048, 2, 16)));
  std::vector<float> partials(chunks * n, 0.f);
  const float* xp = x.typed_data();
  const float* dyp = dy.typed_data();
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    const RowRange rr{rows * chunk / chunks, rows * (chunk + 1) / chunks, H, W, Cin, Cout};
    AccumulateConvKernelGrad(xp, dyp, partials.data() + chunk * n, rr);
  });
  SumPartials(partials, chunks, n, dkernel->typed_data());
  return ffi::Error::Success();
}

// ---------------------------------------------------------------------------------------------
// Dense 3x3 convolution, the forward pass (and, with the kernel flipped and transposed, the
// input gradient): y[b, h, w, d] = sum_{i,j,c} xp[b, h + i, w + j, c] * kernel[i, j, c, d] on
// the input padded by one pixel on every side (the caller pads). XLA:CPU's convolution runs at
// about half the matmul rate for the narrow channel counts of the prompt encoder and the
// U-Net's resampling convs; this is the GEMM micro-kernel applied directly to the image:
// kPixels output pixels x 16 output channels of accumulators stay in registers while the
// 9 * C_in products stream past.

constexpr int kPixels = 6;  // 6 x 2 accumulators + 2 kernel vectors + 1 broadcast: 15 registers
constexpr int64_t kBlock = 16;  // output channels per block of the packed kernel
constexpr int kBlockVectors = static_cast<int>(kBlock / kLanes);

// The kernel (3, 3, C_in, C_out) repacked as (C_out / kBlock, 9, C_in, kBlock), zeros beyond
// C_out: a block's weights are then one contiguous stream, read in order for every tile.
std::vector<float> PackConvKernel(const float* kernel, int64_t Cin, int64_t Cout) {
  const int64_t blocks = (Cout + kBlock - 1) / kBlock;
  std::vector<float> packed(blocks * 9 * Cin * kBlock, 0.f);
  for (int64_t q = 0; q < blocks; ++q) {
    const int64_t width = std::min(kBlock, Cout - q * kBlock);
    for (int64_t tc = 0; tc < 9 * Cin; ++tc) {
      std::copy(kernel + tc * Cout + q * kBlock, kernel + tc * Cout + q * kBlock + width,
                packed.data() + (q * 9 * Cin + tc) * kBlock);
    }
  }
  return packed;
}

// Output pixels [w0, w0 + P) of row h of image b, channels [d0, d0 + width) (width <= kBlock)
// from the packed kernel block `block`.
template <int P>
inline void ConvTile(const float* xp, const float* block, float* y, int64_t Hp, int64_t Wp,
                     int64_t Cin, int64_t Cout, int64_t b, int64_t h, int64_t w0, int64_t d0,
                     int64_t width) {
  Vec acc[P][kBlockVectors] = {};
  for (int i = 0; i < 3; ++i) {
    const float* x_row = xp + ((b * Hp + h + i) * Wp + w0) * Cin;
    for (int j = 0; j < 3; ++j) {
      const float* k = block + (i * 3 + j) * Cin * kBlock;
      const float* x_tap = x_row + j * Cin;
      for (int64_t c = 0; c < Cin; ++c) {
        Vec kv[kBlockVectors];
        for (int v = 0; v < kBlockVectors; ++v) kv[v] = Load(k + c * kBlock + v * kLanes);
        for (int p = 0; p < P; ++p) {
          const Vec xb = Broadcast(x_tap[p * Cin + c]);
          for (int v = 0; v < kBlockVectors; ++v) acc[p][v] += xb * kv[v];
        }
      }
    }
  }
  const int64_t W = Wp - 2;
  float* y_tile = y + ((b * (Hp - 2) + h) * W + w0) * Cout + d0;
  for (int p = 0; p < P; ++p) {
    if (width == kBlock) {
      for (int v = 0; v < kBlockVectors; ++v) Store(y_tile + p * Cout + v * kLanes, acc[p][v]);
      continue;
    }
    for (int64_t l = 0; l < width; ++l) y_tile[p * Cout + l] = acc[p][l / kLanes][l % kLanes];
  }
}

// One output row: every block of output channels sweeps the row in tiles of kPixels.
void ConvRow(const float* xp, const float* packed, float* y, int64_t Hp, int64_t Wp,
             int64_t Cin, int64_t Cout, int64_t b, int64_t h) {
  const int64_t W = Wp - 2;
  for (int64_t d0 = 0; d0 < Cout; d0 += kBlock) {
    const float* block = packed + (d0 / kBlock) * 9 * Cin * kBlock;
    const int64_t width = std::min(kBlock, Cout - d0);
    int64_t w0 = 0;
    for (; w0 + kPixels <= W; w0 += kPixels) {
      ConvTile<kPixels>(xp, block, y, Hp, Wp, Cin, Cout, b, h, w0, d0, width);
    }
    switch (W - w0) {
#define GENLV_CONV_TAIL(P) \
      case P: ConvTile<P>(xp, block, y, Hp, Wp, Cin, Cout, b, h, w0, d0, width); break;
      GENLV_CONV_TAIL(1) GENLV_CONV_TAIL(2) GENLV_CONV_TAIL(3) GENLV_CONV_TAIL(4)
      GENLV_CONV_TAIL(5)
#undef GENLV_CONV_TAIL
      default: break;
    }
  }
}

ffi::Error Conv3x3Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x_padded,
                          ffi::Buffer<ffi::F32> kernel, ffi::ResultBuffer<ffi::F32> y) {
  auto xd = x_padded.dimensions();
  auto kd = kernel.dimensions();
  if (xd.size() != 4 || kd.size() != 4 || kd[0] != 3 || kd[1] != 3 || kd[2] != xd[3] ||
      xd[1] < 3 || xd[2] < 3) {
    return ffi::Error::InvalidArgument("conv3x3: x padded NHWC, kernel (3, 3, C_in, C_out)");
  }
  const int64_t B = xd[0], Hp = xd[1], Wp = xd[2], Cin = xd[3], Cout = kd[3];
  const int64_t rows = B * (Hp - 2);
  const int64_t chunks = std::max<int64_t>(1, std::min(rows, kMaxChunks));
  const float* xp = x_padded.typed_data();
  const std::vector<float> packed = PackConvKernel(kernel.typed_data(), Cin, Cout);
  float* yp = y->typed_data();
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    const int64_t begin = rows * chunk / chunks, end = rows * (chunk + 1) / chunks;
    for (int64_t r = begin; r < end; ++r) {
      ConvRow(xp, packed.data(), yp, Hp, Wp, Cin, Cout, r / (Hp - 2), r % (Hp - 2));
    }
  });
  return ffi::Error::Success();
}

// ---------------------------------------------------------------------------------------------
// LayerNorm over the channel axis (X-Restormer's WithBias_LayerNorm, biased variance): the
// backward pass. XLA's autodiff keeps several full-size intermediates from the forward pass
// and reads them all back in one wide fusion; this reads x and dy once, recomputing each
// pixel's statistics, and sums the weight and bias gradients per chunk.

inline float HorizontalSum(Vec v) {
  float s = 0.f;
  for (int64_t l = 0; l < kLanes; ++l) s += v[l];
  return s;
}

// One pixel: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight;
// dweight += dy * xhat, dbias += dy.
void LayerNormBackwardPixel(const float* x, const float* dy, const float* weight, float eps,
                            int64_t C, float* __restrict__ dx, float* dweight, float* dbias) {
  const int64_t whole = C / kLanes * kLanes;
  Vec vsum = {};
  float sum = 0.f;
  for (int64_t c = 0; c < whole; c += kLanes) vsum += Load(x + c);
  for (int64_t c = whole; c < C; ++c) sum += x[c];
  const float mean = (HorizontalSum(vsum) + sum) / C;
  Vec vvar = {};
  float var = 0.f;
  for (int64_t c = 0; c < whole; c += kLanes) {
    const Vec d = Load(x + c) - mean;
    vvar += d * d;
  }
  for (int64_t c = whole; c < C; ++c) var += (x[c] - mean) * (x[c] - mean);
  const float rstd = 1.f / std::sqrt((HorizontalSum(vvar) + var) / C + eps);
  Vec vg = {}, vgx = {};
  float g_sum = 0.f, gx_sum = 0.f;
  for (int64_t c = 0; c < whole; c += kLanes) {
    const Vec xhat = (Load(x + c) - mean) * rstd, d = Load(dy + c), g = d * Load(weight + c);
    vg += g;
    vgx += g * xhat;
    Store(dweight + c, Load(dweight + c) + d * xhat);
    Store(dbias + c, Load(dbias + c) + d);
  }
  for (int64_t c = whole; c < C; ++c) {
    const float xhat = (x[c] - mean) * rstd, g = dy[c] * weight[c];
    g_sum += g;
    gx_sum += g * xhat;
    dweight[c] += dy[c] * xhat;
    dbias[c] += dy[c];
  }
  const float g_mean = (HorizontalSum(vg) + g_sum) / C, gx_mean = (HorizontalSum(vgx) + gx_sum) / C;
  for (int64_t c = 0; c < whole; c += kLanes) {
    const Vec xhat = (Load(x + c) - mean) * rstd, g = Load(dy + c) * Load(weight + c);
    Store(dx + c, rstd * (g - g_mean - xhat * gx_mean));
  }
  for (int64_t c = whole; c < C; ++c) {
    const float xhat = (x[c] - mean) * rstd, g = dy[c] * weight[c];
    dx[c] = rstd * (g - g_mean - xhat * gx_mean);
  }
}

ffi::Error LayerNormBackward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                             ffi::Buffer<ffi::F32> weight, ffi::Buffer<ffi::F32> dy,
                             ffi::ResultBuffer<ffi::F32> dx, ffi::ResultBuffer<ffi::F32> dweight,
                             ffi::ResultBuffer<ffi::F32> dbias, float epsilon) {
  auto xd = x.dimensions();
  if (xd.size() < 1 || weight.element_count() != static_cast<size_t>(xd.back()) ||
      dy.element_count() != x.element_count()) {
    return ffi::Error::InvalidArgument("layer norm backward: weight (C,), dy shaped like x");
  }
  const int64_t C = xd.back();
  const int64_t pixels = static_cast<int64_t>(x.element_count()) / std::max<int64_t>(C, 1);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(pixels, kMaxChunks));
  std::vector<float> partials(chunks * 2 * C, 0.f);
  const float* xp = x.typed_data();
  const float* wp = weight.typed_data();
  const float* dyp = dy.typed_data();
  float* dxp = dx->typed_data();
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    const int64_t begin = pixels * chunk / chunks, end = pixels * (chunk + 1) / chunks;
    float* dw = partials.data() + chunk * 2 * C;
    for (int64_t p = begin; p < end; ++p) {
      LayerNormBackwardPixel(xp + p * C, dyp + p * C, wp, epsilon, C, dxp + p * C, dw, dw + C);
    }
  });
  std::vector<float> sums(2 * C);
  SumPartials(partials, chunks, 2 * C, sums.data());
  std::copy(sums.begin(), sums.begin() + C, dweight->typed_data());
  std::copy(sums.begin() + C, sums.end(), dbias->typed_data());
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(GenlvDepthwiseConv3x3Forward, DepthwiseConv3x3Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(GenlvDepthwiseConv3x3Backward, DepthwiseConv3x3Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(GenlvGatedDepthwiseConv3x3Forward, GatedDepthwiseConv3x3Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(GenlvGatedDepthwiseConv3x3Backward, GatedDepthwiseConv3x3Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(GenlvConv3x3Forward, Conv3x3Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(GenlvConv3x3KernelGrad, Conv3x3KernelGrad,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(GenlvLayerNormBackward, LayerNormBackward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("epsilon"));
