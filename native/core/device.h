// A device is a kind plus an index: "cpu" (== "cpu:0"), "cpu:1" (a second CPU replica with its
// own queue), "cuda:0". Parsing and printing live here so both sides spell devices the same way.
#pragma once
#include <string>

#include "error.h"

namespace patho {

struct Device {
  enum class Kind { CPU = 0, CUDA = 1 };
  Kind kind = Kind::CPU;
  int index = 0;

  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return std::string(kind == Kind::CPU ? "cpu" : "cuda") + ":" + std::to_string(index); }

  static Device parse(const std::string& s) {
    Device d;
    std::string kind = s, idx;
    auto colon = s.find(':');
    if (colon != std::string::npos) {
      kind = s.substr(0, colon);
      idx = s.substr(colon + 1);
    }
    if (kind == "cpu")
      d.kind = Kind::CPU;
    else if (kind == "cuda")
      d.kind = Kind::CUDA;
    else
      PATHO_THROW("ERR_PATHO_DEVICE", "Expected a device like 'cpu', 'cpu:1' or 'cuda:0' but received '" << s << "'");
    if (!idx.empty()) {
      size_t used = 0;
      int v = -1;
      try {
        v = std::stoi(idx, &used);
      } catch (...) {
        used = 0;
      }
      PATHO_CHECK(used == idx.size() && v >= 0 && v < 1024, "ERR_PATHO_DEVICE",
                  "Expected a device index >= 0 in '" << s << "'");
      d.index = v;
    }
    return d;
  }
};

}  // namespace patho
