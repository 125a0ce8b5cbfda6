// Why CUDA has no device, in words a user can act on. The plugin links CUDA 13's runtime
// statically, so a driver older than 580 fails exactly like a missing one
// (cudaErrorInsufficientDriver); cudaDriverGetVersion tells them apart (0 = no libcuda.so.1,
// otherwise the newest CUDA the driver supports). Pure functions of the numbers CUDA reports, so
// test/cuda/selftest.cc checks every case on a machine without a GPU.
#pragma once
#include <string>

namespace patho {

enum class DriverProblem { None, Missing, TooOld, NoDevice, Error };

inline const char* driverProblemName(DriverProblem p) {
  switch (p) {
    case DriverProblem::None:
      return "none";
    case DriverProblem::Missing:
      return "missing";
    case DriverProblem::TooOld:
      return "too-old";
    case DriverProblem::NoDevice:
      return "no-device";
    default:
      return "error";
  }
}

// 13000 -> "13.0", 12040 -> "12.4" (CUDA's encoding: 1000 * major + 10 * minor).
inline std::string cudaVersionString(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

// The first driver branch of each CUDA major release (CUDA's release notes, table 3).
inline int minDriverBranch(int runtime) {
  const int major = runtime / 1000;
  return major >= 13 ? 580 : major == 12 ? 525 : major == 11 ? 450 : 0;
}

// "580.82.07" out of /proc/driver/nvidia/version: the first dotted number after "Kernel Module"
// ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar ..." or, for the open
// modules, "... Open Kernel Module for x86_64  580.82.07  Release Build ..."); "" if none.
inline std::string parseProcDriverVersion(const std::string& text) {
  const std::string key = "Kernel Module";
  size_t at = text.find(key);
  if (at == std::string::npos) return "";
  for (at += key.size(); at < text.size();) {
    while (at < text.size() && (text[at] == ' ' || text[at] == '\t')) at++;
    size_t end = at;
    while (end < text.size() && text[end] != ' ' && text[end] != '\t' && text[end] != '\n') end++;
    const std::string token = text.substr(at, end - at);
    bool digitsAndDots = !token.empty() && token.front() >= '0' && token.front() <= '9';
    for (char ch : token) digitsAndDots = digitsAndDots && ((ch >= '0' && ch <= '9') || ch == '.');
    if (digitsAndDots && token.find('.') != std::string::npos) return token;
    if (end >= text.size() || text[end] == '\n') break;
    at = end;
  }
  return "";
}

struct DriverVerdict {
  DriverProblem problem = DriverProblem::None;
  std::string message;  // "" when problem is None
};

// runtime: cudaRuntimeGetVersion (the plugin's CUDA); driverCuda: cudaDriverGetVersion (0 without
// a driver); driverVersion: the driver's own version ("580.82.07") or "" when unknown;
// countError: cudaGetDeviceCount's status (0 = success, 35 insufficient driver, 100 no device),
// with its name and text; count: devices found.
inline DriverVerdict classifyDriver(int runtime, int driverCuda, const std::string& driverVersion, int countError,
                                    const std::string& errorName, const std::string& errorText, int count) {
  DriverVerdict v;
  const std::string driverName = "the NVIDIA driver" + (driverVersion.empty() ? std::string() : " " + driverVersion) +
                                 (driverCuda > 0 ? " (CUDA " + cudaVersionString(driverCuda) + ")" : std::string());
  const std::string status = errorName.empty() ? std::string() : "; " + errorName + ": " + errorText;
  if (driverCuda <= 0 && countError != 0) {
    v.problem = DriverProblem::Missing;
    v.message = "no NVIDIA driver found (libcuda.so.1 is not loadable)" + status;
  } else if (driverCuda > 0 && driverCuda < runtime) {
    v.problem = DriverProblem::TooOld;
    v.message = driverName + " supports CUDA up to " + cudaVersionString(driverCuda) +
                "; this plugin is built with CUDA " + cudaVersionString(runtime) + " and needs driver " +
                std::to_string(minDriverBranch(runtime)) + " or newer" + status;
  } else if (countError == 100) {
    v.problem = DriverProblem::NoDevice;
    v.message = driverName + " sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)" + status;
  } else if (countError != 0) {
    v.problem = DriverProblem::Error;
    v.message = "cudaGetDeviceCount failed with " + driverName + status;
  } else if (count <= 0) {
    v.problem = DriverProblem::NoDevice;
    v.message = driverName + " sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)";
  }
  return v;
}

}  // namespace patho
