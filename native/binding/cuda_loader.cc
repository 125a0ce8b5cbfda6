// Finds and dlopens libpatho_cuda.so on demand (DESIGN.md decision 2). Before the plugin, cuDNN
// and NCCL are preloaded (RTLD_GLOBAL) from the first place that has them: PATHO_CUDNN_PATH /
// PATHO_NCCL_PATH, the system library path, CUDA's lib64, or a pip environment's nvidia/cudnn/lib
// and nvidia/nccl/lib. Every attempt is recorded so `patho doctor` can say what was tried.
#include <dlfcn.h>
#include <glob.h>

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

// Folders where pip puts nvidia/<pkg>/lib, most specific first.
std::vector<std::string> pipLibDirs(const std::string& pkg) {
  std::vector<std::string> roots;
  auto env = [](const char* k) { const char* v = std::getenv(k); return std::string(v ? v : ""); };
  for (auto prefix : {env("VIRTUAL_ENV"), env("CONDA_PREFIX")}) {
    if (!prefix.empty()) roots.push_back(prefix + "/lib/python3*/site-packages");
  }
  std::string pp = env("PYTHONPATH");
  std::stringstream ss(pp);
  for (std::string item; std::getline(ss, item, ':');) if (!item.empty()) roots.push_back(item);
  if (!env("HOME").empty()) roots.push_back(env("HOME") + "/.local/lib/python3*/site-packages");
  roots.push_back(env("HOME") + "/.pyenv/versions/*/lib/python3*/site-packages");
  const char* cwd = std::getenv("PWD");
  if (cwd) roots.push_back(std::string(cwd) + "/.venv/lib/python3*/site-packages");  // uv / poetry
  if (!env("HOME").empty()) {
    for (auto conda : {"/miniconda3", "/anaconda3", "/miniforge3"}) roots.push_back(env("HOME") + conda + "/lib/python3*/site-packages");
  }
  roots.push_back("/usr/local/lib/python3*/dist-packages");
  roots.push_back("/usr/local/lib/python3*/site-packages");
  roots.push_back("/usr/local/lib64/python3*/site-packages");  // Fedora / RHEL
  roots.push_back("/usr/lib/python3/dist-packages");
  roots.push_back("/usr/lib/python3*/site-packages");
  roots.push_back("/usr/lib64/python3*/site-packages");
  roots.push_back("/opt/conda/lib/python3*/site-packages");
  std::vector<std::string> dirs;
  for (auto& r : roots) for (auto& d : globAll(r + "/nvidia/" + pkg + "/lib")) dirs.push_back(d);
  return dirs;
}

// Preloads `soname` globally from the first candidate that works; records each attempt.
bool preload(Plugin& p, const char* what, const char* soname, const char* envVar, const std::string& pipPkg) {
  std::vector<std::string> candidates;
  if (const char* v = std::getenv(envVar)) candidates.push_back(std::string(v) + "/" + soname);
  candidates.push_back(soname);  // system library path / LD_LIBRARY_PATH
  for (auto& d : pipLibDirs(pipPkg)) candidates.push_back(d + "/" + soname);
  for (const char* k : {"CUDA_HOME", "CUDA_PATH"}) {
    if (const char* v = std::getenv(k)) candidates.push_back(std::string(v) + "/lib64/" + soname);
  }
  candidates.push_back(std::string("/usr/local/cuda/lib64/") + soname);
  for (auto& d : globAll("/usr/local/cuda-*/targets/x86_64-linux/lib")) candidates.push_back(d + "/" + soname);
  candidates.push_back(addonDir() + "/../../.nvidia/" + pipPkg + "/lib/" + soname);  // developer checkout
  for (auto& c : candidates) {
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (h) {
      Dl_info dl;
      std::string where = c;
      void* sym = dlsym(h, pipPkg == "cudnn" ? "cudnnGetVersion" : "ncclGetVersion");
      if (sym && dladdr(sym, &dl) && dl.dli_fname) where = dl.dli_fname;
      p.report.push_back(std::string(what) + ": loaded " + where);
      return true;
    }
    const char* e = dlerror();
    std::string why = e ? e : "not found";
    // "cannot open shared object file" means absent; anything else means present but broken
    if (why.find("cannot open shared object file") != std::string::npos) p.report.push_back(std::string(what) + ": not at " + c);
    else p.report.push_back(std::string(what) + ": failed to load " + c + ": " + why);
  }
  return false;
}

Plugin& loadPlugin() {
  Plugin& p = gPlugin;
  if (p.tried) return p;
  p.tried = true;
  bool haveCudnn = preload(p, "cuDNN", "libcudnn.so.9", "PATHO_CUDNN_PATH", "cudnn");
  bool haveNccl = preload(p, "NCCL", "libnccl.so.2", "PATHO_NCCL_PATH", "nccl");
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
    return p;
  }
  std::ostringstream os;
  os << "the CUDA plugin libpatho_cuda.so could not be loaded (";
  for (size_t i = 0; i < failures.size(); i++) os << (i ? "; " : "") << failures[i];
  os << ")";
  if (!haveCudnn) os << "; cuDNN 9 (libcudnn.so.9) was not found: pip install nvidia-cudnn-cu13 or set PATHO_CUDNN_PATH";
  if (!haveNccl) os << "; NCCL 2 (libnccl.so.2) was not found: pip install nvidia-nccl-cu13 or set PATHO_NCCL_PATH";
  p.error = os.str();
  return p;
}

std::string jsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += c; }
    else if (c == '\n') o += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o;
}

}  // namespace

std::string cudaInfoJson() {
  std::lock_guard<std::mutex> lock(gMu);
  Plugin& p = loadPlugin();
  if (!p.handle) return "{\"error\":\"" + jsonEscape(p.error) + "\",\"deviceCount\":0,\"devices\":[]}";
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
