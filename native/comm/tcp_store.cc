// TcpStore: blocking client of the rendezvous store (see tcp_store.h). Errors are patho::Error
// ERR_PATHO_COMM naming the store address and what failed; Gloo passes them through.
#include "tcp_store.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace patho {
namespace {

using Clock = std::chrono::steady_clock;

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : int(left);
}

void putU32(std::vector<char>& b, uint32_t v) {
  for (int i = 0; i < 4; i++) b.push_back(char((v >> (8 * i)) & 0xff));
}
void putStr(std::vector<char>& b, const char* p, size_t n) {
  putU32(b, uint32_t(n));
  b.insert(b.end(), p, p + n);
}
uint32_t getU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// One connect attempt; returns the fd or -1 with errno-like text in `why`.
int tryConnect(const std::string& host, int port, std::string& why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    why = std::string("cannot resolve host: ") + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    why = std::strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return fd;
}

}  // namespace

TcpStore::TcpStore(std::string host, int port, std::string prefix, std::chrono::milliseconds timeout)
    : host_(std::move(host)), prefix_(std::move(prefix)), port_(port), timeout_(timeout) {
  // The server (rank 0) may start after us: retry until the timeout.
  auto deadline = Clock::now() + timeout_;
  std::string why;
  for (;;) {
    fd_ = tryConnect(host_, port_, why);
    if (fd_ >= 0) return;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  PATHO_THROW("ERR_PATHO_COMM", "could not connect to the rendezvous store at "
                                    << where() << " within " << timeout_.count() << " ms (" << why
                                    << "); is rank 0 running and "
                                    << "PATHO_MASTER_ADDR/PATHO_MASTER_PORT right?");
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) close(fd_);
}

std::string TcpStore::where() const { return host_ + ":" + std::to_string(port_); }

void TcpStore::sendAll(const char* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    pollfd pfd{fd_, POLLOUT, 0};
    int pr = poll(&pfd, 1, msLeft(deadline));
    if (pr == 0) PATHO_THROW("ERR_PATHO_COMM", "rendezvous store " << where() << ": send timed out");
    if (pr < 0 && errno == EINTR) continue;
    ssize_t w = send(fd_, p, n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (w <= 0)
      PATHO_THROW("ERR_PATHO_COMM", "rendezvous store " << where() << ": send failed (" << std::strerror(errno) << ")");
    p += w;
    n -= size_t(w);
  }
}

void TcpStore::recvAll(char* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    pollfd pfd{fd_, POLLIN, 0};
    int pr = poll(&pfd, 1, msLeft(deadline));
    if (pr == 0) PATHO_THROW("ERR_PATHO_COMM", "rendezvous store " << where() << ": no answer in time");
    if (pr < 0 && errno == EINTR) continue;
    ssize_t r = recv(fd_, p, n, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r == 0)
      PATHO_THROW("ERR_PATHO_COMM", "rendezvous store " << where() << " closed the connection (rank 0 exited?)");
    if (r < 0)
      PATHO_THROW("ERR_PATHO_COMM",
                  "rendezvous store " << where() << ": receive failed (" << std::strerror(errno) << ")");
    p += r;
    n -= size_t(r);
  }
}

std::vector<char> TcpStore::request(char op, const std::string& key, const std::vector<char>& value,
                                    std::chrono::milliseconds wait) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string full = prefix_ + "/" + key;
  std::vector<char> msg;
  msg.push_back(op);
  putStr(msg, full.data(), full.size());
  putStr(msg, value.data(), value.size());
  putU32(msg, uint32_t(wait.count()));
  // The server answers a waiting get by its own deadline; allow it a margin to say "timed out".
  auto deadline = Clock::now() + wait + std::chrono::seconds(10);
  sendAll(msg.data(), msg.size(), deadline);
  char head[5];
  recvAll(head, 5, deadline);
  std::vector<char> payload(getU32(head + 1));
  if (!payload.empty()) recvAll(payload.data(), payload.size(), deadline);
  if (head[0] == 1) {
    PATHO_THROW("ERR_PATHO_COMM", "rendezvous store " << where() << ": key '" << full << "' was not set within "
                                                      << wait.count() << " ms");
  }
  if (head[0] != 0) {
    PATHO_THROW("ERR_PATHO_COMM",
                "rendezvous store " << where() << ": " << std::string(payload.begin(), payload.end()));
  }
  return payload;
}

void TcpStore::set(const std::string& key, const std::vector<char>& data) { request('S', key, data, timeout_); }

std::vector<char> TcpStore::get(const std::string& key) { return request('G', key, {}, timeout_); }

void TcpStore::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  // Gloo passes its context timeout, which GlooComm shortens while connecting: a late rank still
  // gets the whole rendezvous timeout to publish its address.
  auto deadline = Clock::now() + std::max(timeout, timeout_);
  for (auto& k : keys) request('G', k, {}, std::chrono::milliseconds(msLeft(deadline)));
}

}  // namespace patho
