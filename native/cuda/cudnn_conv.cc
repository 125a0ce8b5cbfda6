// Convolutions through cuDNN (legacy API): 'same' padding, stride 1; x, w, y float32 or bfloat16,
// NCHW or NHWC (w NHWC = KRSC). For each shape, dtype and layout the algorithm of each direction is
// measured once with cudnnFind*AlgorithmEx on the real buffers (like torch.backends.cudnn.benchmark)
// and cached with its workspace size. float32 runs FMA math (TF32 only when opted in); bfloat16
// runs on tensor cores with float32 accumulation (compute type FLOAT), as PyTorch's autocast does.
// The float32 bias is added by cuDNN for float32 NCHW and by kernels/bias.cu otherwise (cuDNN's
// add cannot mix a float32 bias into bf16 data).
#include <algorithm>

#include "check.h"
#include "cuda_backend.h"

namespace patho {
namespace {

constexpr size_t kMaxSearchWorkspace = size_t(1) << 30;  // never search with more than 1 GiB
const float kOne = 1.f, kZero = 0.f;  // cuDNN's scaling factors are float for float and bf16 data

// float32 NCHW: the bias goes through cuDNN, as before mixed precision.
bool plainF32(const Tensor& t) { return t.dtype() == DType::F32 && !t.nhwc(); }

// A temporary device block for an algorithm search, freed when the search is done.
struct SearchBlock {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit SearchBlock(size_t want) {
    // Halve the request until it fits: a smaller search space is better than no search.
    for (bytes = want; bytes >= (size_t(1) << 20); bytes /= 2) {
      if (cudaMalloc(&ptr, bytes) == cudaSuccess) return;
      cudaGetLastError();
      ptr = nullptr;
    }
    bytes = 0;
  }
  ~SearchBlock() { if (ptr && cudaFree(ptr) != cudaSuccess) cudaGetLastError(); }
  SearchBlock(const SearchBlock&) = delete;
  SearchBlock& operator=(const SearchBlock&) = delete;
};

// The first result that ran and fits the search workspace: cuDNN sorts them fastest first.
// float32 without TF32 keeps FMA math whatever a result reports, so float32 stays exact; with TF32
// or bf16 data the math type the result was measured with is used (tensor ops for bf16).
template <typename Perf>
ConvAlgo pickFastest(const Perf* perf, int n, size_t limit, bool anyMath, const char* what) {
  for (int i = 0; i < n; i++) {
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= limit) {
      ConvAlgo a;
      a.chosen = true;
      a.algo = int(perf[i].algo);
      a.workspace = perf[i].memory;
      a.math = anyMath ? perf[i].mathType : CUDNN_FMA_MATH;
      return a;
    }
  }
  PATHO_THROW("ERR_PATHO_CUDNN", what << ": cuDNN found no usable convolution algorithm for this shape");
}

}  // namespace

// The math a search may use: FMA keeps float32 exact (the CPU twin's precision); TF32 is an
// explicit opt-in; bf16 is what tensor cores are for. Set before every search, since the previous
// direction's call left its own choice on the shared descriptor.
cudnnMathType_t CudaBackend::searchMath(const ConvPlan& p) const {
  return p.bf16 ? CUDNN_TENSOR_OP_MATH : tf32_ ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

size_t CudaBackend::searchWorkspaceLimit() {
  size_t freeBytes = 0, totalBytes = 0;
  CHECK_CUDA(cudaMemGetInfo(&freeBytes, &totalBytes));
  return std::min(kMaxSearchWorkspace, freeBytes / 2);
}

// x and w are alike in dtype and layout (the binding checks every ACT argument of a call).
ConvPlan& CudaBackend::convPlan(const Tensor& x, const Tensor& w) {
  const char* op = "conv2d";
  const int N = cudnnDim(x.dim(0), op), C = cudnnDim(x.dim(1), op), H = cudnnDim(x.dim(2), op),
            W = cudnnDim(x.dim(3), op), K = cudnnDim(w.dim(0), op), R = cudnnDim(w.dim(2), op);
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
  CHECK_CUDNN(cudnnSetConvolution2dDescriptor(p->conv, R / 2, R / 2, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT));
  CHECK_CUDNN(cudnnSetConvolutionMathType(p->conv, searchMath(*p)));
  ConvPlan& ref = *p;
  convPlans_.emplace(key, std::move(p));
  return ref;
}

// The searches run real convolutions on the given buffers (outputs are overwritten later by the
// actual call); they need the inputs to be ready, hence the stream sync first.
void CudaBackend::chooseForward(ConvPlan& p, const Tensor& x, const Tensor& w, const Tensor& y) {
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, searchMath(p)));
  SearchBlock ws(searchWorkspaceLimit());
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  CHECK_CUDNN(cudnnFindConvolutionForwardAlgorithmEx(cudnn_, p.x, x.raw(), p.w, w.raw(), p.conv, p.y, y.raw(),
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, ws.ptr, ws.bytes));
  p.fwd = pickFastest(perf, n, ws.bytes, tf32_ || p.bf16, "conv2dForward");
}

void CudaBackend::chooseBackwardData(ConvPlan& p, const Tensor& dy, const Tensor& w, const Tensor& dx) {
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, searchMath(p)));
  SearchBlock ws(searchWorkspaceLimit());
  cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int n = 0;
  CHECK_CUDNN(cudnnFindConvolutionBackwardDataAlgorithmEx(cudnn_, p.w, w.raw(), p.y, dy.raw(), p.conv, p.x, dx.raw(),
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf, ws.ptr,
                                                          ws.bytes));
  p.bwdData = pickFastest(perf, n, ws.bytes, tf32_ || p.bf16, "conv2dBackwardData");
}

void CudaBackend::chooseBackwardFilter(ConvPlan& p, const Tensor& x, const Tensor& dy, const Tensor& dw) {
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, searchMath(p)));
  SearchBlock ws(searchWorkspaceLimit());
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int n = 0;
  CHECK_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnn_, p.x, x.raw(), p.y, dy.raw(), p.conv, p.w,
                                                            dw.raw(), CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n,
                                                            perf, ws.ptr, ws.bytes));
  p.bwdFilter = pickFastest(perf, n, ws.bytes, tf32_ || p.bf16, "conv2dBackwardFilter");
}

void CudaBackend::conv2dForward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  use();
  if (y.numel() == 0) return;
  ConvPlan& p = convPlan(x, w);
  if (!p.fwd.chosen) chooseForward(p, x, w, y);
  void* ws = p.fwd.workspace ? workspace_.ensure(p.fwd.workspace, *alloc_) : nullptr;
  CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, p.fwd.math));
  CHECK_CUDNN(cudnnConvolutionForward(cudnn_, &kOne, p.x, x.raw(), p.w, w.raw(), p.conv,
                                      cudnnConvolutionFwdAlgo_t(p.fwd.algo), ws, p.fwd.workspace, &kZero, p.y,
                                      y.raw()));
  if (!b.defined()) return;
  if (plainF32(y)) CHECK_CUDNN(cudnnAddTensor(cudnn_, &kOne, p.bias, b.raw(), &kOne, p.y, y.raw()));
  else kernels::biasAdd(kernelAct(y), b.f32(), y.dim(0), y.dim(1), y.dim(2) * y.dim(3), stream_);
}

void CudaBackend::conv2dBackwardData(const Tensor& dy, const Tensor& w, const Tensor& dx) {
  use();
  if (dx.numel() == 0) return;
  ConvPlan& p = convPlan(dx, w);
  if (!p.bwdData.chosen) chooseBackwardData(p, dy, w, dx);
  void* ws = p.bwdData.workspace ? workspace_.ensure(p.bwdData.workspace, *alloc_) : nullptr;
  CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, p.bwdData.math));
  CHECK_CUDNN(cudnnConvolutionBackwardData(cudnn_, &kOne, p.w, w.raw(), p.y, dy.raw(), p.conv,
                                           cudnnConvolutionBwdDataAlgo_t(p.bwdData.algo), ws, p.bwdData.workspace,
                                           &kZero, p.x, dx.raw()));
}

void CudaBackend::conv2dBackwardFilter(const Tensor& x, const Tensor& dy, const Tensor& dw, const Tensor& db) {
  use();
  if (x.numel() == 0) {  // no samples: the gradients are zero
    fill(dw, 0.f);
    if (db.defined()) fill(db, 0.f);
    return;
  }
  ConvPlan& p = convPlan(x, dw);
  if (!p.bwdFilter.chosen) chooseBackwardFilter(p, x, dy, dw);
  void* ws = p.bwdFilter.workspace ? workspace_.ensure(p.bwdFilter.workspace, *alloc_) : nullptr;
  CHECK_CUDNN(cudnnSetConvolutionMathType(p.conv, p.bwdFilter.math));
  CHECK_CUDNN(cudnnConvolutionBackwardFilter(cudnn_, &kOne, p.x, x.raw(), p.y, dy.raw(), p.conv,
                                             cudnnConvolutionBwdFilterAlgo_t(p.bwdFilter.algo), ws,
                                             p.bwdFilter.workspace, &kZero, p.w, dw.raw()));
  if (!db.defined()) return;
  if (plainF32(dy)) {
    CHECK_CUDNN(cudnnConvolutionBackwardBias(cudnn_, &kOne, p.y, dy.raw(), &kZero, p.bias, db.raw()));
    return;
  }
  const int64_t K = dy.dim(1);
  const int chunks = kernels::biasGradChunks(dy.dim(0) * dy.dim(2) * dy.dim(3));
  auto* partials = static_cast<double*>(biasPartials_.ensure(size_t(chunks) * size_t(K) * sizeof(double), *alloc_));
  kernels::biasGrad(kernelAct(dy), db.f32(), dy.dim(0), K, dy.dim(2) * dy.dim(3), partials, chunks, stream_);
}

}  // namespace patho
