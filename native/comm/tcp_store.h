// Client of patho's rendezvous key-value store (served by rank 0 from lib/parallel/rendezvous.ts),
// as a gloo::rendezvous::Store so Gloo exchanges its TCP addresses through it.
// Wire format (little-endian), one request at a time per connection:
//   request  = op:u8 ('S' set | 'G' get, waiting up to timeoutMs for the key) key:str value:str timeoutMs:u32
//   response = status:u8 (0 ok | 1 timed out | 2 error) payload:str      with str = len:u32 bytes
#pragma once
#include <gloo/rendezvous/store.h>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace patho {

class TcpStore : public gloo::rendezvous::Store {
 public:
  // Connects (retrying until `timeout`) to host:port; keys are namespaced as "<prefix>/<key>".
  TcpStore(std::string host, int port, std::string prefix, std::chrono::milliseconds timeout);
  ~TcpStore() override;

  void set(const std::string& key, const std::vector<char>& data) override;
  // Waits up to the store's timeout for the key to be set.
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  std::vector<char> request(char op, const std::string& key, const std::vector<char>& value,
                            std::chrono::milliseconds wait);
  void sendAll(const char* p, size_t n, std::chrono::steady_clock::time_point deadline);
  void recvAll(char* p, size_t n, std::chrono::steady_clock::time_point deadline);
  std::string where() const;

  std::string host_, prefix_;
  int port_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  std::mutex mu_;
};

}  // namespace patho
