// Convolutions through cuDNN (legacy API): 'same' padding, stride 1; x, w, y float32 or bfloat16,
// NCHW or NHWC (w NHWC = KRSC). For each shape, dtype and layout the algorithm of each direction is
// measured once with cudnnFind*AlgorithmEx on the real buffers (like torch.backends.cudnn.benchmark)
// and cached with its workspace size. float32 runs FMA math (TF32 only when opted in); bfloat16
// runs on tensor cores with float32 accumulation (compute type FLOAT), as PyTorch's autocast does.
// The float32 bias is added by cuDNN for float32 NCHW and by kernels/bias.cu otherwise (cuDNN's
// add cannot mix a float32 bias into bf16 data). A batch too large for one descriptor runs in
// chunks (batch_split.h); the filter gradient then adds up over them (cuDNN's beta = 1).
#include <algorithm>

#include "check.h"
#include "cuda_backend.h"

namespace patho {
namespace {

const float kOne = 1.f, kZero = 0.f;                   // cuDNN's scaling factors are float for float and bf16 data
constexpr size_t kSearchHeadroom = size_t(256) << 20;  // left free during a search for cuDNN's own needs

// float32 NCHW: the bias goes through cuDNN, as before mixed precision.
bool plainF32(const Tensor& t) { return t.dtype() == DType::F32 && !t.nhwc(); }

// Image i0 onwards of a batch tensor.
void* images(const Tensor& t, int64_t i0) {
  const int64_t per = t.dim(0) ? t.numel() / t.dim(0) : 0;
  return static_cast<char*>(t.raw()) + i0 * per * int64_t(dtypeSize(t.dtype()));
}

// A temporary device block for an algorithm search, freed when the search is done.
struct SearchBlock {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit SearchBlock(size_t want) {
    if (want == 0) return;
    // Halve the request until it fits: a smaller search space is better than no search.
    for (bytes = want; bytes >= (size_t(1) << 20); bytes /= 2) {
      if (cudaMalloc(&ptr, bytes) == cudaSuccess) return;
      cudaGetLastError();
      ptr = nullptr;
    }
    bytes = 0;
  }
  ~SearchBlock() {
    if (ptr && cudaFree(ptr) != cudaSuccess) cudaGetLastError();
  }
  SearchBlock(const SearchBlock&) = delete;
  SearchBlock& operator=(const SearchBlock&) = delete;
};

// The largest workspace any algorithm of a direction asks for (algorithms that cannot run this
// shape report an error and are skipped): what the search should be able to offer.
template <typename Algo, typename SizeFn>
size_t largestWorkspace(int count, SizeFn size) {
  size_t most = 0;
  for (int a = 0; a < count; a++) {
    size_t b = 0;
    if (size(Algo(a), &b) == CUDNN_STATUS_SUCCESS) most = std::max(most, b);
  }
  return most;
}

}  // namespace

// The math a search may use: FMA keeps float32 exact (the CPU twin's precision); TF32 is an
// explicit opt-in; bf16 is what tensor cores are for. Set before every search, since the previous
// direction's call left its own choice on the shared descriptor.
cudnnMathType_t CudaBackend::searchMath(const ConvPlan& p) const {
  return p.bf16 ? CUDNN_TENSOR_OP_MATH : tf32_ ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

// The allocator's cached blocks go back to the device first: they are free memory the search may
// use (cudaFree waits for queued work; this runs once per shape). Then every algorithm's workspace
// is offered if the device has it, keeping some headroom.
size_t CudaBackend::searchWorkspaceLimit(size_t wanted) {
  alloc_->releaseCached();
  size_t freeBytes = 0, totalBytes = 0;
  CHECK_CUDA(cudaMemGetInfo(&freeBytes, &totalBytes));
  return std::min(wanted, freeBytes > kSearchHeadroom ? freeBytes - kSearchHeadroom : freeBytes / 2);
}

// The first result that ran and fits the search workspace: cuDNN sorts them fastest first. In
// deterministic mode (PATHO_DETERMINISTIC=1) only results cuDNN marks CUDNN_DETERMINISTIC count.
// float32 without TF32 keeps FMA math whatever a result reports, so float32 stays exact; with TF32
// or bf16 data the math type the result was measured with is used (tensor ops for bf16).
template <typename Perf>
ConvAlgo CudaBackend::pickAlgo(const Perf* perf, int n, size_t limit, bool anyMath, const char* what) const {
  for (int i = 0; i < n; i++) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > limit) continue;
    if (deterministic_ && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    ConvAlgo a;
    a.chosen = true;
    a.algo = int(perf[i].algo);
    a.workspace = perf[i].memory;
    a.math = anyMath ? perf[i].mathType : CUDNN_FMA_MATH;
    return a;
  }
  PATHO_THROW("ERR_PATHO_CUDNN", what << ": cuDNN found no usable " << (deterministic_ ? "deterministic " : "")
                                      << "convolution algorithm for this shape"
                                      << (deterministic_ ? " (PATHO_DETERMINISTIC=1 is set)" : ""));
}

BatchSplit CudaBackend::splitFor(const char* op, int64_t N, int64_t perImage, const Tensor& a, const Tensor& b) const {
  const BatchSplit s = batchSplit(N, perImage, maxElements_);
  PATHO_CHECK(s.count > 0, "ERR_PATHO_SHAPE",
              op << ": one image of " << a.describe() << " or " << b.describe() << " has " << perImage
                 << " elements, more than cuDNN's " << maxElements_
                 << " per tensor, and cannot be split further; use smaller tiles or fewer channels");
  return s;
}

// x and w are alike in dtype and layout (the binding checks every ACT argument of a call).
ConvPlan& CudaBackend::convPlan(int64_t n, const Tensor& x, const Tensor& w) {
  const char* op = "conv2d";
  const int N = cudnnDim(n, op), C = cudnnDim(x.dim(1), op), H = cudnnDim(x.dim(2), op), W = cudnnDim(x.dim(3), op),
            K = cudnnDim(w.dim(0), op), R = cudnnDim(w.dim(2), op);
  const cudnnDataType_t type = cudnnType(x.dtype(), op);
  const cudnnTensorFormat_t format = cudnnFormat(x);
  auto key = std::make_tuple(N, C, H, W, K, R, int(type), int(format));
  auto it = convPlans_.find(key);
  if (it != convPlans_.end()) return *it->second;
  auto p = std::make_unique<ConvPlan>();
  p->bf16 = type == CUDNN_DATA_BFLOAT16;
  CHECK_CUDNN(cudnnSetTensor4dDescriptor(p->x, format, type, N, C, H, W));
  CHECK_CUDNN(cudnnSetTensor4dDescriptor(p->y, format, type, N, K, H, W));
  CHECK_CUDNN(cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, K, 1, 1));
  // Filter dims are logical K,C,R,S; CUDNN_TENSOR_NHWC means the weights are stored K,R,S,C.
  CHECK_CUDNN(cudnnSetFilter4dDescriptor(p->w, type, format, K, C, R, R));
  // bf16 data accumulates in float32 (cuDNN's PSEUDO_BFLOAT16 configuration).
  CHECK_CUDNN(
      cudnnSetConvolution2dDescriptor(p->conv, R / 2, R / 2, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CHECK_CUDNN(cudnnSetConvolutionMathType(p->conv, searchMath(*p)));
  ConvPlan& ref = *p;
  convPlans_.emplace(key, std::move(p));
  return ref;
}

// The searches run real convolutions on the given buffers (outputs are overwritten later by the
// actual call); they need the inputs to be ready, hence the stream sync first.
void CudaBackend::chooseForward(ConvPlan& p, const void* x, const void* w, void* y) {
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, searchMath(p)));
  const size_t wanted = largestWorkspace<cudnnConvolutionFwdAlgo_t>(
      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, [&](cudnnConvolutionFwdAlgo_t a, size_t* b) {
        return cudnnGetConvolutionForwardWorkspaceSize(cudnn_, p.x, p.w, p.conv, p.y, a, b);
      });
  SearchBlock ws(searchWorkspaceLimit(wanted));
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  CHECK_CUDNN(cudnnFindConvolutionForwardAlgorithmEx(cudnn_, p.x, x, p.w, w, p.conv, p.y, y,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, ws.ptr, ws.bytes));
  p.fwd = pickAlgo(perf, n, ws.bytes, tf32_ || p.bf16, "conv2dForward");
}

void CudaBackend::chooseBackwardData(ConvPlan& p, const void* dy, const void* w, void* dx) {
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, searchMath(p)));
  const size_t wanted = largestWorkspace<cudnnConvolutionBwdDataAlgo_t>(
      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, [&](cudnnConvolutionBwdDataAlgo_t a, size_t* b) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn_, p.w, p.y, p.conv, p.x, a, b);
      });
  SearchBlock ws(searchWorkspaceLimit(wanted));
  cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int n = 0;
  CHECK_CUDNN(cudnnFindConvolutionBackwardDataAlgorithmEx(
      cudnn_, p.w, w, p.y, dy, p.conv, p.x, dx, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf, ws.ptr, ws.bytes));
  p.bwdData = pickAlgo(perf, n, ws.bytes, tf32_ || p.bf16, "conv2dBackwardData");
}

void CudaBackend::chooseBackwardFilter(ConvPlan& p, const void* x, const void* dy, void* dw) {
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, searchMath(p)));
  const size_t wanted = largestWorkspace<cudnnConvolutionBwdFilterAlgo_t>(
      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, [&](cudnnConvolutionBwdFilterAlgo_t a, size_t* b) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn_, p.x, p.y, p.conv, p.w, a, b);
      });
  SearchBlock ws(searchWorkspaceLimit(wanted));
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int n = 0;
  CHECK_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithmEx(
      cudnn_, p.x, x, p.y, dy, p.conv, p.w, dw, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf, ws.ptr, ws.bytes));
  p.bwdFilter = pickAlgo(perf, n, ws.bytes, tf32_ || p.bf16, "conv2dBackwardFilter");
}

// Every chunk's plan is chosen before any chunk computes: a search writes its output buffer, which
// for the filter gradient is shared by all chunks.
void CudaBackend::conv2dForward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  use();
  if (y.numel() == 0) return;
  const int64_t N = x.dim(0);
  const BatchSplit s = splitFor("conv2dForward", N, std::max(x.numel(), y.numel()) / N, x, y);
  for (int64_t i = 0; i < s.count; i++) {
    ConvPlan& p = convPlan(s.size(i, N), x, w);
    if (!p.fwd.chosen) chooseForward(p, images(x, i * s.per), w.raw(), images(y, i * s.per));
  }
  for (int64_t i = 0; i < s.count; i++) {
    ConvPlan& p = convPlan(s.size(i, N), x, w);
    void* ws = p.fwd.workspace ? workspace_.ensure(p.fwd.workspace, *alloc_) : nullptr;
    CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, p.fwd.math));
    CHECK_CUDNN(cudnnConvolutionForward(cudnn_, &kOne, p.x, images(x, i * s.per), p.w, w.raw(), p.conv,
                                        cudnnConvolutionFwdAlgo_t(p.fwd.algo), ws, p.fwd.workspace, &kZero, p.y,
                                        images(y, i * s.per)));
  }
  if (!b.defined()) return;
  if (plainF32(y) && s.count == 1) {
    ConvPlan& p = convPlan(N, x, w);
    CHECK_CUDNN(cudnnAddTensor(cudnn_, &kOne, p.bias, b.raw(), &kOne, p.y, y.raw()));
  } else {
    kernels::biasAdd(kernelAct(y), b.f32(), y.dim(0), y.dim(1), y.dim(2) * y.dim(3), stream_);
  }
}

void CudaBackend::conv2dBackwardData(const Tensor& dy, const Tensor& w, const Tensor& dx) {
  use();
  if (dx.numel() == 0) return;
  const int64_t N = dx.dim(0);
  const BatchSplit s = splitFor("conv2dBackwardData", N, std::max(dx.numel(), dy.numel()) / N, dy, dx);
  for (int64_t i = 0; i < s.count; i++) {
    ConvPlan& p = convPlan(s.size(i, N), dx, w);
    if (!p.bwdData.chosen) chooseBackwardData(p, images(dy, i * s.per), w.raw(), images(dx, i * s.per));
  }
  for (int64_t i = 0; i < s.count; i++) {
    ConvPlan& p = convPlan(s.size(i, N), dx, w);
    void* ws = p.bwdData.workspace ? workspace_.ensure(p.bwdData.workspace, *alloc_) : nullptr;
    CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, p.bwdData.math));
    CHECK_CUDNN(cudnnConvolutionBackwardData(cudnn_, &kOne, p.w, w.raw(), p.y, images(dy, i * s.per), p.conv,
                                             cudnnConvolutionBwdDataAlgo_t(p.bwdData.algo), ws, p.bwdData.workspace,
                                             &kZero, p.x, images(dx, i * s.per)));
  }
}

void CudaBackend::conv2dBackwardFilter(const Tensor& x, const Tensor& dy, const Tensor& dw, const Tensor& db) {
  use();
  if (x.numel() == 0) {  // no samples: the gradients are zero
    fill(dw, 0.f);
    if (db.defined()) fill(db, 0.f);
    return;
  }
  const int64_t N = x.dim(0);
  const BatchSplit s = splitFor("conv2dBackwardFilter", N, std::max(x.numel(), dy.numel()) / N, x, dy);
  for (int64_t i = 0; i < s.count; i++) {
    ConvPlan& p = convPlan(s.size(i, N), x, dw);
    if (!p.bwdFilter.chosen) chooseBackwardFilter(p, images(x, i * s.per), images(dy, i * s.per), dw.raw());
  }
  for (int64_t i = 0; i < s.count; i++) {
    ConvPlan& p = convPlan(s.size(i, N), x, dw);
    void* ws = p.bwdFilter.workspace ? workspace_.ensure(p.bwdFilter.workspace, *alloc_) : nullptr;
    CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, p.bwdFilter.math));
    CHECK_CUDNN(cudnnConvolutionBackwardFilter(cudnn_, &kOne, p.x, images(x, i * s.per), p.y, images(dy, i * s.per),
                                               p.conv, cudnnConvolutionBwdFilterAlgo_t(p.bwdFilter.algo), ws,
                                               p.bwdFilter.workspace, i == 0 ? &kZero : &kOne, p.w, dw.raw()));
  }
  if (!db.defined()) return;
  if (plainF32(dy) && s.count == 1) {
    ConvPlan& p = convPlan(N, x, dw);
    CHECK_CUDNN(cudnnConvolutionBackwardBias(cudnn_, &kOne, p.y, dy.raw(), &kZero, p.bias, db.raw()));
    return;
  }
  const int64_t K = dy.dim(1);
  const int chunks = kernels::biasGradChunks(dy.dim(0) * dy.dim(2) * dy.dim(3));
  auto* partials = static_cast<double*>(biasPartials_.ensure(size_t(chunks) * size_t(K) * sizeof(double), *alloc_));
  kernels::biasGrad(kernelAct(dy), db.f32(), dy.dim(0), K, dy.dim(2) * dy.dim(3), partials, chunks, stream_);
}

}  // namespace patho
