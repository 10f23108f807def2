// Depthwise 3x3 convolution (zero padding 1, stride 1) for XLA:CPU, float32 NHWC, through the
// XLA FFI. genlv_jax/models/cpu_kernels.py compiles this file on first use.
//
// Why a kernel: XLA:CPU has no fast depthwise convolution. The nine shifted multiply-adds the
// model uses otherwise are fine in the forward pass, but the kernel gradient becomes nine
// separate column reductions over every pixel plus eight materialised shifted copies of the
// cotangent, about a quarter of a GenLV training step (BENCHMARKS.md). Here the forward pass
// reads each input row three times from cache, and the backward pass computes the input
// gradient and all nine kernel-gradient taps in one sweep.
//
// Work is split into fixed chunks of image rows that depend only on the shapes, and the
// per-chunk partial kernel gradients are summed in chunk order, so results are bitwise
// reproducible whatever the number of threads.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kLanes = 16;     // channels per register block (one AVX-512 vector)
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
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), num_chunks - 1);
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

// out_row[w, c] = sum_{i,j} in[b, h + i - 1, w + j - 1, c] * kernel[i, j, c] (zero outside).
// Blocks of kLanes channels sweep the row with the block's nine kernel vectors in registers.
void ConvolveRow(const float* in, const float* kernel, const float* zero_row,
                 float* __restrict__ out_row, const Geometry& g, int64_t b, int64_t h) {
  const int64_t C = g.channels, W = g.width;
  const float* rows[3];
  NeighbourRows(in, zero_row, g, b, h, rows);
  int64_t c0 = 0;
  for (; c0 + kLanes <= C; c0 += kLanes) {
    float k[9][kLanes];
    for (int t = 0; t < 9; ++t) std::copy(kernel + t * C + c0, kernel + t * C + c0 + kLanes, k[t]);
    for (int64_t w = 0; w < W; ++w) {
      float acc[kLanes] = {};
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          const int64_t ww = w + j - 1;
          if (ww < 0 || ww >= W) continue;
          const float* __restrict__ s = rows[i] + ww * C + c0;
          for (int64_t l = 0; l < kLanes; ++l) acc[l] += s[l] * k[i * 3 + j][l];
        }
      }
      std::copy(acc, acc + kLanes, out_row + w * C + c0);
    }
  }
  for (; c0 < C; ++c0) {  // the channels left over after whole blocks
    for (int64_t w = 0; w < W; ++w) {
      float acc = 0.f;
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          const int64_t ww = w + j - 1;
          if (ww >= 0 && ww < W) acc += rows[i][ww * C + c0] * kernel[(i * 3 + j) * C + c0];
        }
      }
      out_row[w * C + c0] = acc;
    }
  }
}

// partial[i, j, c] += sum_w x[b, h + i - 1, w + j - 1, c] * dy[b, h, w, c] (zero outside),
// with a block's nine accumulators held in registers across the row.
void AccumulateKernelGradRow(const float* x, const float* dy, const float* zero_row,
                             float* __restrict__ partial, const Geometry& g, int64_t b, int64_t h) {
  const int64_t C = g.channels, W = g.width;
  const float* rows[3];
  NeighbourRows(x, zero_row, g, b, h, rows);
  const float* dy_row = dy + (b * g.height + h) * g.row_size();
  int64_t c0 = 0;
  for (; c0 + kLanes <= C; c0 += kLanes) {
    float acc[9][kLanes] = {};
    for (int64_t w = 0; w < W; ++w) {
      const float* __restrict__ d = dy_row + w * C + c0;
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          const int64_t ww = w + j - 1;
          if (ww < 0 || ww >= W) continue;
          const float* __restrict__ s = rows[i] + ww * C + c0;
          for (int64_t l = 0; l < kLanes; ++l) acc[i * 3 + j][l] += s[l] * d[l];
        }
      }
    }
    for (int t = 0; t < 9; ++t) {
      for (int64_t l = 0; l < kLanes; ++l) partial[t * C + c0 + l] += acc[t][l];
    }
  }
  for (; c0 < C; ++c0) {
    for (int64_t w = 0; w < W; ++w) {
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          const int64_t ww = w + j - 1;
          if (ww >= 0 && ww < W) partial[(i * 3 + j) * C + c0] += rows[i][ww * C + c0] * dy_row[w * C + c0];
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

int64_t NumChunks(const Geometry& g) { return std::max<int64_t>(1, std::min(g.rows(), kMaxChunks)); }

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
      ConvolveRow(xp, kp, zero_row.data(), yp + r * g.row_size(), g, r / g.height, r % g.height);
    }
  });
  return ffi::Error::Success();
}

// dx = the same convolution of dy with the kernel flipped in both spatial axes;
// dkernel[i, j, c] = sum_{b,h,w} x[b, h + i - 1, w + j - 1, c] * dy[b, h, w, c].
ffi::Error DepthwiseConv3x3Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                                    ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::F32> dy,
                                    ffi::ResultBuffer<ffi::F32> dx,
                                    ffi::ResultBuffer<ffi::F32> dkernel) {
  Geometry g;
  if (ffi::Error e = CheckShapes(x, kernel, &g); e.failure()) return e;
  if (dy.element_count() != x.element_count()) {
    return ffi::Error::InvalidArgument("depthwise conv: dy must have the shape of x");
  }
  const int64_t C = g.channels;
  std::vector<float> flipped(9 * C);
  const float* kp = kernel.typed_data();
  for (int t = 0; t < 9; ++t) std::copy(kp + (8 - t) * C, kp + (9 - t) * C, flipped.data() + t * C);

  const int64_t chunks = NumChunks(g);
  std::vector<float> partials(chunks * 9 * C, 0.f);
  const std::vector<float> zero_row(g.row_size(), 0.f);
  const float* xp = x.typed_data();
  const float* dyp = dy.typed_data();
  float* dxp = dx->typed_data();
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    const int64_t begin = g.rows() * chunk / chunks, end = g.rows() * (chunk + 1) / chunks;
    float* partial = partials.data() + chunk * 9 * C;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / g.height, h = r % g.height;
      ConvolveRow(dyp, flipped.data(), zero_row.data(), dxp + r * g.row_size(), g, b, h);
      AccumulateKernelGradRow(xp, dyp, zero_row.data(), partial, g, b, h);
    }
  });
  float* dkp = dkernel->typed_data();
  for (int64_t t = 0; t < 9 * C; ++t) {
    double sum = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partials[chunk * 9 * C + t];
    dkp[t] = static_cast<float>(sum);
  }
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
