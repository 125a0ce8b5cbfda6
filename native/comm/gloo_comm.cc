// GlooComm (see gloo_comm.h). Gloo throws its own exceptions (IoException when a peer's
// connection drops, TimeoutException); each becomes ERR_PATHO_COMM with the rank and the cause.
#include "gloo_comm.h"

#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/transport/tcp/device.h>

#include <algorithm>
#include <exception>

#include "tcp_store.h"

namespace patho {

namespace {
// Runs a Gloo call; anything it throws becomes ERR_PATHO_COMM naming this rank and the call.
template <typename F>
void glooCall(const Communicator& c, const char* what, F&& fn) {
  try {
    fn();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    PATHO_COMM_THROW(c, what, e.what() << " (a peer process exited, or did not reach " << what << " in time)");
  }
}
}  // namespace

GlooComm::GlooComm(const GlooOptions& o) : rank_(o.rank), size_(o.size), device_(o.device), timeout_(o.timeout) {
  PATHO_CHECK(o.size >= 1 && o.rank >= 0 && o.rank < o.size, "ERR_PATHO_ARG",
              "commCreateGloo: Expected 0 <= rank < size but received rank " << o.rank << ", size " << o.size);
  glooCall(*this, "rendezvous", [&] {
    TcpStore store(o.storeHost, o.storePort, o.prefix, o.timeout);
    gloo::transport::tcp::attr attr;
    if (!o.bindHost.empty()) attr.hostname = o.bindHost;
    auto dev = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(o.rank, o.size);
    // Gloo waits 5x the context timeout for a peer to connect to this rank's listening socket: give
    // it a fifth for the connections, so an unreachable peer fails within the timeout, not 5x. (The
    // wait for the peers' addresses keeps the full timeout: TcpStore::wait never shortens its own.)
    ctx->setTimeout(std::max(o.timeout / 5, std::min(o.timeout, std::chrono::milliseconds(1000))));
    try {
      ctx->connectFullMesh(store, dev);
    } catch (const Error& e) {
      // The store waits for each peer's address under the key "<prefix>/<rank>".
      PATHO_COMM_THROW(*this, "rendezvous",
                       e.what() << " (Gloo waits for each rank's address under '" << o.prefix
                                << "/<rank>': that rank did not start, or failed "
                                << "before connecting)");
    }
    ctx->setTimeout(o.timeout);
    context_ = std::move(ctx);
  });
}

GlooComm::~GlooComm() { finishSide(); }

void GlooComm::doAllReduce(const Tensor& t, ReduceOp op) {
  if (t.numel() == 0) return;
  glooCall(*this, "allReduce", [&] {
    gloo::AllreduceOptions opts(context_);
    opts.setOutput(t.f32(), size_t(t.numel()));
    opts.setReduceFunction(static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
    opts.setTag(nextTag());
    opts.setTimeout(timeout_);
    gloo::allreduce(opts);
  });
  if (op == ReduceOp::Avg) {
    // Same factor and order on every rank, so the ranks stay bit-identical.
    const float s = 1.0f / float(size_);
    float* p = t.f32();
    for (int64_t i = 0, n = t.numel(); i < n; i++) p[i] *= s;
  }
}

void GlooComm::doBroadcast(const Tensor& t, int root) {
  PATHO_CHECK(root >= 0 && root < size_, "ERR_PATHO_ARG",
              "broadcast: Expected a root rank below " << size_ << " but received " << root);
  if (t.numel() == 0) return;
  glooCall(*this, "broadcast", [&] {
    gloo::BroadcastOptions opts(context_);
    opts.setOutput(t.f32(), size_t(t.numel()));
    opts.setRoot(root);
    opts.setTag(nextTag());
    opts.setTimeout(timeout_);
    gloo::broadcast(opts);
  });
}

void GlooComm::doBarrier() {
  glooCall(*this, "barrier", [&] {
    gloo::BarrierOptions opts(context_);
    opts.setTag(nextTag());
    opts.setTimeout(timeout_);
    gloo::barrier(opts);
  });
}

}  // namespace patho
