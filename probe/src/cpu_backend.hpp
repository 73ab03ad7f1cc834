// The CPU backend (private header): always built.
#pragma once

#include "moeprobe/backend.hpp"

namespace moeprobe {

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(int threads = 0);  // 0: OpenMP default (all cores)
  ~CpuBackend() override;
  std::string name() const override { return "cpu"; }
  DeviceIdentity identity() const override;
  bool supports(DType) const override { return true; }
  void flush_caches() override;
  std::unique_ptr<Op> triad(const TriadSpec& s) override;
  std::unique_ptr<Op> gemm(const GemmSpec& s, const std::vector<float>& x) override;
  std::unique_ptr<Op> moe_router(const MoeSpec& s, const std::vector<float>& x,
                                 int tokens) override;
  std::unique_ptr<Op> moe_permute(const MoeSpec& s, const std::vector<int>& ids,
                                  const std::vector<float>& x, int tokens) override;
  std::unique_ptr<Op> moe_experts(const MoeSpec& s, const std::vector<float>& x_perm,
                                  const std::vector<int>& counts) override;
  std::unique_ptr<Op> moe_combine(const MoeSpec& s, const std::vector<float>& y_perm,
                                  const std::vector<int>& inv, const std::vector<float>& w,
                                  int tokens) override;
  std::unique_ptr<Op> moe_fused(const MoeSpec& s, const std::vector<float>& x, int tokens) override;
  std::unique_ptr<Op> attention(const AttentionSpec& s) override;
  std::unique_ptr<Op> layer(const LayerSpec& s, const std::vector<float>& x) override;

 private:
  int threads_ = 1;
  long long llc_bytes_ = 0;
  std::vector<float> flush_;
};

}  // namespace moeprobe
