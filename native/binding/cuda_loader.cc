// Finds and dlopens libpatho_cuda.so on demand (DESIGN.md decision 2). Before the plugin, cuDNN is
// preloaded (RTLD_GLOBAL) from the first place that has it: PATHO_CUDNN_PATH, the system library
// path, a pip environment's nvidia/cudnn/lib, $CONDA_PREFIX/lib, PyTorch's torch/lib, CUDA's lib64.
// After it, NVRTC (for cuDNN's run-time compiled kernels) the same way. NCCL is not needed to load
// the plugin: it is preloaded from the same places only when CUDA is described (doctor, device
// lists) or a communicator is made, and the plugin dlopens it then. Every attempt is recorded so
// `patho doctor` can say what was tried.
#include <dlfcn.h>
#include <glob.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "core/cuda_plugin.h"
#include "devices.h"

namespace patho {
namespace {

struct Plugin {
  bool tried = false;
  bool ncclTried = false;
  void* handle = nullptr;
  std::string path, error;
  std::vector<std::string> report;  // one line per attempt
  patho_cuda_info_fn info = nullptr;
  patho_cuda_create_backend_fn create = nullptr;
};

std::mutex gMu;
Plugin gPlugin;

std::string addonDir() {
  Dl_info dl;
  if (dladdr(reinterpret_cast<void*>(&addonDir), &dl) && dl.dli_fname) {
    std::string p = dl.dli_fname;
    auto slash = p.rfind('/');
    if (slash != std::string::npos) return p.substr(0, slash);
  }
  return ".";
}

std::vector<std::string> globAll(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g;
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; i++) out.push_back(g.gl_pathv[i]);
  }
  globfree(&g);
  return out;
}

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

// Python site-packages folders (glob patterns), most specific first: where pip puts nvidia/*
// wheels and PyTorch.
std::vector<std::string> siteRoots() {
  std::vector<std::string> roots;
  for (auto prefix : {env("VIRTUAL_ENV"), env("CONDA_PREFIX")}) {
    if (!prefix.empty()) roots.push_back(prefix + "/lib/python3*/site-packages");
  }
  std::stringstream ss(env("PYTHONPATH"));
  for (std::string item; std::getline(ss, item, ':');)
    if (!item.empty()) roots.push_back(item);
  const std::string home = env("HOME");
  if (!home.empty()) {
    roots.push_back(home + "/.local/lib/python3*/site-packages");
    roots.push_back(home + "/.pyenv/versions/*/lib/python3*/site-packages");
  }
  if (!env("PWD").empty()) roots.push_back(env("PWD") + "/.venv/lib/python3*/site-packages");  // uv / poetry
  if (!home.empty()) {
    for (auto conda : {"/miniconda3", "/anaconda3", "/miniforge3"})
      roots.push_back(home + conda + "/lib/python3*/site-packages");
  }
  for (auto r : {"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
                 "/usr/local/lib64/python3*/site-packages",  // Fedora / RHEL
                 "/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages",
                 "/usr/lib64/python3*/site-packages", "/opt/conda/lib/python3*/site-packages"})
    roots.push_back(r);
  return roots;
}

// Existing folders `sub` (e.g. "nvidia/cudnn/lib", "torch/lib") under every site root.
std::vector<std::string> underSiteRoots(const std::string& sub) {
  std::vector<std::string> dirs;
  for (auto& r : siteRoots())
    for (auto& d : globAll(r + "/" + sub)) dirs.push_back(d);
  return dirs;
}

struct Library {
  const char* what;                     // "cuDNN"
  std::string soname;                   // "libcudnn.so.9"
  const char* envVar;                   // "PATHO_CUDNN_PATH" or null
  std::vector<std::string> pipSubdirs;  // {"nvidia/cudnn/lib"}
  const char* devSubdir;                // the developer checkout's .nvidia/<dir>/lib, or null
  const char* versionSymbol;            // a symbol that tells where the library really is
};

// Every place `lib` may be, in the order tried.
std::vector<std::string> candidates(const Library& lib) {
  std::vector<std::string> c;
  if (lib.envVar && !env(lib.envVar).empty()) c.push_back(env(lib.envVar) + "/" + lib.soname);
  c.push_back(lib.soname);  // system library path / LD_LIBRARY_PATH
  for (auto& sub : lib.pipSubdirs)
    for (auto& d : underSiteRoots(sub)) c.push_back(d + "/" + lib.soname);
  if (!env("CONDA_PREFIX").empty())
    c.push_back(env("CONDA_PREFIX") + "/lib/" + lib.soname);                      // conda's cudnn / nccl packages
  for (auto& d : underSiteRoots("torch/lib")) c.push_back(d + "/" + lib.soname);  // PyTorch builds that bundle them
  for (const char* k : {"CUDA_HOME", "CUDA_PATH"}) {
    if (!env(k).empty()) c.push_back(env(k) + "/lib64/" + lib.soname);
  }
  c.push_back("/usr/local/cuda/lib64/" + lib.soname);
  for (auto& d : globAll("/usr/local/cuda-*/targets/x86_64-linux/lib")) c.push_back(d + "/" + lib.soname);
  if (lib.devSubdir)
    c.push_back(addonDir() + "/../../.nvidia/" + lib.devSubdir + "/lib/" + lib.soname);  // developer checkout
  std::vector<std::string> unique;  // overlapping roots ($VIRTUAL_ENV inside ~/.pyenv, say) are tried once
  for (auto& x : c)
    if (std::find(unique.begin(), unique.end(), x) == unique.end()) unique.push_back(x);
  return unique;
}

// Preloads `lib` globally from the first candidate that works; records each attempt.
bool preload(Plugin& p, const Library& lib) {
  for (auto& c : candidates(lib)) {
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (h) {
      Dl_info dl;
      std::string where = c;
      void* sym = lib.versionSymbol ? dlsym(h, lib.versionSymbol) : nullptr;
      if (sym && dladdr(sym, &dl) && dl.dli_fname) where = dl.dli_fname;
      p.report.push_back(std::string(lib.what) + ": loaded " + where);
      return true;
    }
    const char* e = dlerror();
    std::string why = e ? e : "not found";
    // "cannot open shared object file" means absent; anything else means present but broken
    if (why.find("cannot open shared object file") != std::string::npos)
      p.report.push_back(std::string(lib.what) + ": not at " + c);
    else
      p.report.push_back(std::string(lib.what) + ": failed to load " + c + ": " + why);
  }
  return false;
}

const Library kCudnn{"cuDNN", "libcudnn.so.9", "PATHO_CUDNN_PATH", {"nvidia/cudnn/lib"}, "cudnn", "cudnnGetVersion"};
const Library kNccl{"NCCL", "libnccl.so.2", "PATHO_NCCL_PATH", {"nvidia/nccl/lib"}, "nccl", "ncclGetVersion"};
// CUDA 13's pip wheels put their libraries in nvidia/cu13/lib; CUDA 12's in nvidia/cuda_nvrtc/lib.
Library nvrtcLibrary(int cudaMajor) {
  return Library{"NVRTC", "libnvrtc.so." + std::to_string(cudaMajor),
                 nullptr, {"nvidia/cu" + std::to_string(cudaMajor) + "/lib", "nvidia/cuda_nvrtc/lib"},
                 nullptr, "nvrtcVersion"};
}

Plugin& loadPlugin() {
  Plugin& p = gPlugin;
  if (p.tried) return p;
  p.tried = true;
  bool haveCudnn = preload(p, kCudnn);
  std::vector<std::string> candidates;
  if (const char* v = std::getenv("PATHO_CUDA_PLUGIN")) candidates.push_back(v);
  candidates.push_back(addonDir() + "/libpatho_cuda.so");
  candidates.push_back(addonDir() + "/cuda/libpatho_cuda.so");  // prebuilds/<platform>/cuda
  std::string lastErr;
  std::vector<std::string> failures;  // every candidate's reason, for the error message
  for (auto& c : candidates) {
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      std::string why = e ? e : "unknown dlopen error";
      // dlerror names the file when the plugin itself is missing, not when a dependency is
      if (why.rfind(c + ": ", 0) == 0) why = why.substr(c.size() + 2);
      lastErr = c + ": " + why;
      p.report.push_back("plugin: " + lastErr);
      failures.push_back(lastErr);
      continue;
    }
    auto abi = reinterpret_cast<patho_cuda_abi_fn>(dlsym(h, "patho_cuda_abi"));
    p.info = reinterpret_cast<patho_cuda_info_fn>(dlsym(h, "patho_cuda_info"));
    p.create = reinterpret_cast<patho_cuda_create_backend_fn>(dlsym(h, "patho_cuda_create_backend"));
    if (!abi || !p.info || !p.create) {
      lastErr = c + " is not a patho CUDA plugin (missing patho_cuda_* symbols)";
      p.report.push_back("plugin: " + lastErr);
      failures.push_back(lastErr);
      dlclose(h);
      continue;
    }
    if (abi() != PATHO_CUDA_ABI) {
      lastErr = c + " was built for plugin ABI " + std::to_string(abi()) + ", this addon needs " +
                std::to_string(PATHO_CUDA_ABI) + " (rebuild both together)";
      p.report.push_back("plugin: " + lastErr);
      failures.push_back(lastErr);
      dlclose(h);
      continue;
    }
    p.handle = h;
    p.path = c;
    p.report.push_back("plugin: loaded " + c);
    // Optional: older plugins lack it, and then cuDNN finds NVRTC by itself or not at all.
    if (auto rt = reinterpret_cast<patho_cuda_runtime_version_fn>(dlsym(h, "patho_cuda_runtime_version"))) {
      if (!preload(p, nvrtcLibrary(rt() / 1000)))
        p.report.push_back("NVRTC: not found (cuDNN's run-time compiled kernels will be unavailable)");
    }
    return p;
  }
  std::ostringstream os;
  os << "the CUDA plugin libpatho_cuda.so could not be loaded (";
  for (size_t i = 0; i < failures.size(); i++) os << (i ? "; " : "") << failures[i];
  os << ")";
  if (!haveCudnn)
    os << "; cuDNN 9 (libcudnn.so.9) was not found: pip install nvidia-cudnn-cu13 or set PATHO_CUDNN_PATH";
  p.error = os.str();
  return p;
}

std::string jsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (c == '\n')
      o += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20)
      o += ' ';
    else
      o += c;
  }
  return o;
}

}  // namespace

std::string cudaInfoJson() {
  std::lock_guard<std::mutex> lock(gMu);
  Plugin& p = loadPlugin();
  if (!p.handle) return "{\"error\":\"" + jsonEscape(p.error) + "\",\"deviceCount\":0,\"devices\":[]}";
  // NCCL is looked for now, not when the plugin loads: describing CUDA (doctor, device lists) and
  // making a communicator (comm.cc asks for this first) are what need it.
  if (!p.ncclTried) {
    p.ncclTried = true;
    preload(p, kNccl);
  }
  return p.info();
}

std::string cudaLoaderReport() {
  std::lock_guard<std::mutex> lock(gMu);
  Plugin& p = loadPlugin();
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < p.report.size(); i++) os << (i ? "," : "") << "\"" << jsonEscape(p.report[i]) << "\"";
  os << "]";
  return os.str();
}

std::unique_ptr<Backend> createCudaBackend(int index) {
  std::lock_guard<std::mutex> lock(gMu);
  Plugin& p = loadPlugin();
  if (!p.handle) PATHO_THROW("ERR_PATHO_CUDA", "no CUDA device (" << p.error << ")");
  char err[1024] = {0};
  Backend* b = p.create(index, err, sizeof(err));
  if (!b) PATHO_THROW("ERR_PATHO_CUDA", "no CUDA device cuda:" << index << " (" << err << ")");
  return std::unique_ptr<Backend>(b);
}

}  // namespace patho
