// Would a Winograd convolution speed up airbench94's 3x3 convolutions on this CPU? Compares, in pairs,
// oneDNN's bf16 direct convolution (what lightning runs) with oneDNN's float32 Winograd F(4x4,3x3) (the
// only Winograd oneDNN has for x86: 4x fewer multiplications, at half bf16's rate) on the recipe's
// shapes, forward, backward data and backward weights. Prints each round and, per shape, the median of
// the per-round ratios (direct time / Winograd time: > 1 means Winograd is faster) with their range.
//   g++ -O2 bench/conv_winograd.cpp -ldnnl -o /tmp/conv_winograd && /tmp/conv_winograd [batch] [rounds]
// oneDNN 2.x's API (Debian 12's 2.6.3); oneDNN 3.x has no Winograd for x86 CPUs.
#include <oneapi/dnnl/dnnl.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <vector>

using namespace dnnl;
using dt = memory::data_type;
using args_t = std::unordered_map<int, memory>;

static engine eng(engine::kind::cpu, 0);
static stream strm(eng);

static double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static memory filled(const memory::desc &d) {
  memory m(d, eng);
  std::memset(m.get_data_handle(), 0x3c, d.get_size());  // 0x3c3c: about 1.1 in bf16, 0.011 in f32
  return m;
}

// One convolution's three passes with one algorithm and data type.
struct Passes {
  primitive fwd, bwd_data, bwd_weights;
  args_t fwd_args, bwd_data_args, bwd_weights_args;
  const char *impl = "";

  Passes(int n, int c, int k, int hw, algorithm alg, dt type) {
    memory::dims src{n, c, hw, hw}, wei{k, c, 3, 3}, dst{n, k, hw, hw}, one{1, 1};
    auto any = memory::format_tag::any;
    memory::desc s(src, type, any), w(wei, type, any), d(dst, type, any);
    convolution_forward::primitive_desc fpd(
        convolution_forward::desc(prop_kind::forward_training, alg, s, w, d, one, one, one), eng);
    convolution_backward_data::primitive_desc bpd(
        convolution_backward_data::desc(alg, s, w, d, one, one, one), eng, fpd);
    convolution_backward_weights::primitive_desc wpd(
        convolution_backward_weights::desc(alg, s, w, d, one, one, one), eng, fpd);
    fwd = convolution_forward(fpd);
    bwd_data = convolution_backward_data(bpd);
    bwd_weights = convolution_backward_weights(wpd);
    fwd_args = {{DNNL_ARG_SRC, filled(fpd.src_desc())}, {DNNL_ARG_WEIGHTS, filled(fpd.weights_desc())},
                {DNNL_ARG_DST, filled(fpd.dst_desc())}};
    bwd_data_args = {{DNNL_ARG_DIFF_DST, filled(bpd.diff_dst_desc())},
                     {DNNL_ARG_WEIGHTS, filled(bpd.weights_desc())},
                     {DNNL_ARG_DIFF_SRC, filled(bpd.diff_src_desc())}};
    bwd_weights_args = {{DNNL_ARG_SRC, filled(wpd.src_desc())}, {DNNL_ARG_DIFF_DST, filled(wpd.diff_dst_desc())},
                        {DNNL_ARG_DIFF_WEIGHTS, filled(wpd.diff_weights_desc())}};
    impl = fpd.impl_info_str();
  }

  static double time(primitive &p, args_t &a, int reps) {
    double t0 = seconds();
    for (int i = 0; i < reps; i++) p.execute(strm, a);
    strm.wait();
    return (seconds() - t0) / reps;
  }

  // Seconds per pass: forward, backward data, backward weights.
  void round(double out[3], int reps) {
    out[0] = time(fwd, fwd_args, reps);
    out[1] = time(bwd_data, bwd_data_args, reps);
    out[2] = time(bwd_weights, bwd_weights_args, reps);
  }
};

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  int batch = argc > 1 ? atoi(argv[1]) : 256, rounds = argc > 2 ? atoi(argv[2]) : 5, reps = 3;
  // airbench94's 3x3 convolutions: {in channels, out channels, height = width}
  const int shapes[][3] = {{24, 64, 31}, {64, 64, 15}, {64, 256, 15}, {256, 256, 7}, {256, 256, 3}};
  const char *pass_names[3] = {"forward", "backward data", "backward weights"};
  printf("batch %d, %d rounds of %d repetitions; ratio = bf16 direct time / f32 Winograd time\n", batch, rounds, reps);
  for (auto &sh : shapes) {
    Passes direct(batch, sh[0], sh[1], sh[2], algorithm::convolution_direct, dt::bf16);
    Passes wino(batch, sh[0], sh[1], sh[2], algorithm::convolution_winograd, dt::f32);
    double warm[3];
    direct.round(warm, 1);
    wino.round(warm, 1);
    std::vector<double> ratio[4], t_direct[4], t_wino[4];
    for (int r = 0; r < rounds; r++) {
      double a[3], b[3];
      if (r % 2 == 0) { direct.round(a, reps); wino.round(b, reps); }
      else { wino.round(b, reps); direct.round(a, reps); }
      double sa = 0, sb = 0;
      for (int p = 0; p < 3; p++) {
        ratio[p].push_back(a[p] / b[p]); t_direct[p].push_back(a[p]); t_wino[p].push_back(b[p]);
        sa += a[p]; sb += b[p];
      }
      ratio[3].push_back(sa / sb); t_direct[3].push_back(sa); t_wino[3].push_back(sb);
      printf("  %dx%dx%d->%d round %d: direct %.1f ms, Winograd %.1f ms, ratio %.2f\n", sh[0], sh[2], sh[2], sh[1],
             r + 1, sa * 1e3, sb * 1e3, sa / sb);
    }
    printf("%dx%dx%d -> %d (direct: %s, Winograd: %s)\n", sh[0], sh[2], sh[2], sh[1], direct.impl, wino.impl);
    for (int p = 0; p < 4; p++) {
      auto mm = std::minmax_element(ratio[p].begin(), ratio[p].end());
      printf("  %-17s direct %7.1f ms  Winograd %7.1f ms  ratio %.2fx (%.2f-%.2f)\n", p < 3 ? pass_names[p] : "all three",
             median(t_direct[p]) * 1e3, median(t_wino[p]) * 1e3, median(ratio[p]), *mm.first, *mm.second);
    }
  }
  return 0;
}
