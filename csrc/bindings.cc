// pybind11 bindings of the engine: argument checks, GIL release, no math.
// Arrays must already be float32 and C-contiguous: nothing is silently
// converted or copied (a wrong dtype raises TypeError, a strided view
// ValueError).
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>

#include "cpu.h"
#include "engine.h"
#include "serve/shm_loop.h"
#include "kernels/kernel_test.h"

namespace py = pybind11;

namespace {

struct PyPlan {
  art::Plan plan;
  py::list keep;   // the weight arrays the plan points into, kept alive with it
  PyPlan(std::vector<art::Shape3> shapes, int output, bool q8) : plan(std::move(shapes), output, q8) {}
};

art::Act parse_act(const std::string& s) {
  if (s == "none") return art::Act::None;
  if (s == "relu") return art::Act::Relu;
  if (s == "relu6") return art::Act::Relu6;
  if (s == "hswish") return art::Act::HSwish;
  if (s == "hsigmoid") return art::Act::HSigmoid;
  if (s == "sigmoid") return art::Act::Sigmoid;
  throw py::value_error("unknown activation '" + s + "'");
}

art::OpKind parse_kind(const std::string& s) {
  static const char* names[] = {"resize", "conv", "pwconv", "dwconv", "se", "add", "gap", "linear", "quantize"};
  for (int i = 0; i < art::kNumOpKinds; ++i)
    if (s == names[i]) return static_cast<art::OpKind>(i);
  throw py::value_error("unknown op kind '" + s + "'");
}

py::array checked_array(const py::handle& o, const std::string& what) {
  if (!py::isinstance<py::array>(o)) throw py::type_error(what + " must be a numpy array");
  auto a = py::reinterpret_borrow<py::array>(o);
  if (!a.dtype().is(py::dtype::of<float>()))
    throw py::type_error(what + " must be float32, got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw py::value_error(what + " must be C-contiguous");
  return a;
}

art::Buffer buffer(const py::object& o, const std::string& what, py::list& keep) {
  art::Buffer b;
  if (o.is_none()) return b;
  py::array a = checked_array(o, what);
  keep.append(a);
  b.data = static_cast<const float*>(a.data());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) b.shape.push_back(a.shape(i));
  return b;
}

// A GEMM weight handed over in panels (GemmArgs): the 1-D array of its K*N
// floats and its logical shape (K, N).
void to_panels(art::Buffer& b, const py::object& kn, const std::string& what) {
  const auto t = kn.cast<std::tuple<int64_t, int64_t>>();
  const int64_t K = std::get<0>(t), N = std::get<1>(t);
  if (b.data == nullptr) throw py::value_error(what + ": panels given without the array");
  if (K < 1 || N < 1 || b.shape.size() != 1 || b.shape[0] != K * N)
    throw py::value_error(what + " in panels must be a 1-D array of K*N = " + std::to_string(K) + "*" +
                          std::to_string(N) + " floats");
  b.shape = {K, N};
  b.panels = true;
}

art::Buffer8 buffer8(const py::object& o, const std::string& what, py::list& keep) {
  art::Buffer8 b;
  if (o.is_none()) return b;
  if (!py::isinstance<py::array>(o)) throw py::type_error(what + " must be a numpy array");
  auto a = py::reinterpret_borrow<py::array>(o);
  if (!a.dtype().is(py::dtype::of<int8_t>()))
    throw py::type_error(what + " must be int8, got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw py::value_error(what + " must be C-contiguous");
  keep.append(a);
  b.data = static_cast<const int8_t*>(a.data());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) b.shape.push_back(a.shape(i));
  return b;
}

art::QParam qparam(const py::object& o, const std::string& what) {
  art::QParam q;
  if (o.is_none()) return q;
  auto t = o.cast<std::tuple<double, int>>();
  q.scale = static_cast<float>(std::get<0>(t));
  q.zp = std::get<1>(t);
  return q;
}

std::vector<float> vec(const py::object& o, const std::string& what) {
  if (o.is_none()) return {};
  py::array a = checked_array(o, what);
  if (a.ndim() != 1) throw py::value_error(what + " must be 1-D");
  const float* p = static_cast<const float*>(a.data());
  return std::vector<float>(p, p + a.shape(0));
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "adaptive_rt native engine (C++): plans over one shared weight arena";

  m.def("available_isas", [] {
    std::vector<std::string> out;
    for (const char* n : {"scalar", "avx2", "avx512", "neon"})
      if (art::table_by_name(n)) out.emplace_back(n);
    return out;
  }, "Kernel tables this CPU and build can run.");
  m.attr("arenas_mapped") = art::ArenaPool::mapped();
  m.def("default_isa", [] { return std::string(art::default_kernels()->name); });
  m.def("available_isas8", [] {
    std::vector<std::string> out;
    for (const char* n : {"scalar", "avx2", "avxvnni", "avx512vnni", "neon", "neondot"})
      if (art::q8_table_by_name(n)) out.emplace_back(n);
    return out;
  }, "int8 kernel tables this CPU and build can run.");
  m.def("default_isa8", [] { return std::string(art::q8_kernels_for(art::default_kernels())->name); });
#ifdef ART_OPENMP
  m.attr("built_with_openmp") = true;
#else
  m.attr("built_with_openmp") = false;
#endif

  m.def("_kernel_test", [](const std::string& isa) {
    const art::KernelTable* t = art::table_by_name(isa.c_str());
    if (!t) throw py::value_error("no kernel table '" + isa + "'");
    art::KernelTestReport r;
    {
      py::gil_scoped_release nogil;
      r = art::test_kernel_table(*t);
    }
    return py::make_tuple(r.checks, r.failures);
  }, py::arg("isa"), "Every kernel of one table against a double-precision reference: (cases, failures).");
  m.def("_kernel_test8", [](const std::string& isa) {
    const art::Q8Table* t = art::q8_table_by_name(isa.c_str());
    if (!t) throw py::value_error("no int8 kernel table '" + isa + "'");
    art::KernelTestReport r;
    {
      py::gil_scoped_release nogil;
      r = art::test_q8_kernel_table(*t);
    }
    return py::make_tuple(r.checks, r.failures);
  }, py::arg("isa"), "Every kernel of one int8 table against an integer reference, exactly: (cases, failures).");

  // Direct kernel calls for the kernel tests (tests/test_kernels.py): every
  // table's kernel against NumPy on shapes the networks may never produce.
  m.def("_kernel_gemm", [](const std::string& isa, const py::object& ao, const py::object& bo, int n_cols,
                           const py::object& scale, const py::object& shift, const py::object& reso, const std::string& act,
                           const py::object& ascale, bool panels, int boff) {
    const art::KernelTable* t = art::table_by_name(isa.c_str());
    if (!t) throw py::value_error("no kernel table '" + isa + "'");
    py::array a = checked_array(ao, "A"), b = checked_array(bo, "B");
    if (a.ndim() != 2 || b.ndim() != 2 || b.shape(0) < a.shape(1) || boff < 0 || b.shape(1) < n_cols + boff || n_cols < 1)
      throw py::value_error("need A [M, K] and B [>=K, >=N + boff]");
    if (panels && boff % art::kPanel != 0) throw py::value_error("with panels, boff must be a multiple of kPanel");
    const int M = static_cast<int>(a.shape(0)), K = static_cast<int>(a.shape(1));
    std::vector<float> sc = vec(scale, "scale"), sh = vec(shift, "shift");
    if ((!sc.empty() && static_cast<int>(sc.size()) != n_cols) || (!sh.empty() && static_cast<int>(sh.size()) != n_cols))
      throw py::value_error("scale/shift must have N values");
    py::array_t<float> c({M, n_cols});
    art::GemmArgs g;
    g.M = M; g.N = n_cols; g.K = K;
    g.A = static_cast<const float*>(a.data()); g.lda = K;
    g.B = static_cast<const float*>(b.data()); g.ldb = b.shape(1); g.boff = boff;
    std::vector<float> bpan;
    if (panels) {   // B repacked in panels (the layout a pool's 1x1 weights are loaded in)
      const int64_t Ks = b.shape(0), Ns = b.shape(1);
      bpan.resize(static_cast<size_t>(Ks * Ns));
      for (int64_t p0 = 0; p0 < Ns; p0 += art::kPanel) {
        const int64_t w = std::min<int64_t>(art::kPanel, Ns - p0);
        for (int64_t k = 0; k < Ks; ++k)
          for (int64_t c = 0; c < w; ++c) bpan[p0 * Ks + k * w + c] = g.B[k * Ns + p0 + c];
      }
      g.B = bpan.data(); g.bk = Ks;
    }
    g.C = c.mutable_data(); g.ldc = n_cols;
    g.scale = sc.empty() ? nullptr : sc.data(); g.shift = sh.empty() ? nullptr : sh.data();
    g.act = parse_act(act);
    py::array res;
    if (!reso.is_none()) {
      res = checked_array(reso, "res");
      if (res.ndim() != 2 || res.shape(0) != M || res.shape(1) != n_cols) throw py::value_error("res must be [M, N]");
      g.res = static_cast<const float*>(res.data()); g.ldr = n_cols;
    }
    std::vector<float> as = vec(ascale, "ascale");
    std::vector<float> pack;
    if (!as.empty()) {   // A's columns scaled by a gate = B's rows scaled (what a fused SE does)
      if (static_cast<int>(as.size()) != K) throw py::value_error("ascale must have K values");
      pack.resize(static_cast<size_t>(K) * n_cols);
      g.bscale = as.data();
      g.bpack = pack.data();
    }
    t->gemm(g, 0, M, 0, n_cols);
    return c;
  }, py::arg("isa"), py::arg("a"), py::arg("b"), py::arg("n"), py::arg("scale"), py::arg("shift"), py::arg("res"),
     py::arg("act"), py::arg("ascale") = py::none(), py::arg("panels") = false, py::arg("boff") = 0);
  m.def("_kernel_dwconv", [](const std::string& isa, const py::object& xo, const py::object& wo, int channels, int stride,
                             const py::object& scale, const py::object& shift, const std::string& act) {
    const art::KernelTable* t = art::table_by_name(isa.c_str());
    if (!t) throw py::value_error("no kernel table '" + isa + "'");
    py::array x = checked_array(xo, "x"), w = checked_array(wo, "w");
    if (x.ndim() != 3 || w.ndim() != 3 || w.shape(0) != w.shape(1) || w.shape(0) % 2 == 0 || x.shape(2) != channels ||
        w.shape(2) < channels || stride < 1)
      throw py::value_error("need x [H, W, C], w [k, k, >=C], odd k");
    const int H = static_cast<int>(x.shape(0)), W = static_cast<int>(x.shape(1)), k = static_cast<int>(w.shape(0));
    const int Ho = (H + 2 * (k / 2) - k) / stride + 1, Wo = (W + 2 * (k / 2) - k) / stride + 1;
    std::vector<float> sc = vec(scale, "scale"), sh = vec(shift, "shift");
    if (static_cast<int>(sc.size()) != channels || static_cast<int>(sh.size()) != channels)
      throw py::value_error("scale/shift must have C values");
    py::array_t<float> out({Ho, Wo, channels});
    art::DwArgs d;
    d.H = H; d.W = W; d.C = channels; d.Ho = Ho; d.Wo = Wo; d.k = k; d.stride = stride;
    d.in = static_cast<const float*>(x.data()); d.w = static_cast<const float*>(w.data()); d.wc = w.shape(2);
    d.out = out.mutable_data(); d.scale = sc.data(); d.shift = sh.data(); d.act = parse_act(act);
    t->dwconv(d, 0, Ho);
    return out;
  });

  py::class_<art::Engine>(m, "Engine")
      .def(py::init([](int max_threads, const std::string& isa, const std::string& isa8) {
             if (max_threads < 1 || max_threads > 256) throw py::value_error("max_threads must be 1..256");
             const art::KernelTable* t = isa.empty() ? art::default_kernels() : art::table_by_name(isa.c_str());
             if (t == nullptr) throw py::value_error("kernel table '" + isa + "' is not available on this CPU/build");
             const art::Q8Table* q = isa8.empty() ? art::q8_kernels_for(t) : art::q8_table_by_name(isa8.c_str());
             if (q == nullptr) throw py::value_error("int8 kernel table '" + isa8 + "' is not available on this CPU/build");
             return new art::Engine(max_threads, t, q);
           }), py::arg("max_threads") = 2, py::arg("isa") = "", py::arg("isa8") = "")
      .def_property_readonly("isa", [](const art::Engine& e) { return std::string(e.kernels()->name); })
      .def_property_readonly("isa8", [](const art::Engine& e) { return std::string(e.q8_kernels()->name); })
      .def_property_readonly("max_threads", &art::Engine::max_threads)
      .def_property_readonly("arena_bytes", &art::Engine::arena_bytes)
      .def_property_readonly("packed_bytes", &art::Engine::packed_bytes)
      .def("run", [](art::Engine& e, PyPlan& p, const py::object& xo, const py::object& outo, int threads) {
             if (!p.plan.finalized()) throw py::value_error("plan is not finalized");
             if (!e.owns(p.plan))
               throw py::value_error("plan belongs to another engine (built for " + std::to_string(p.plan.max_threads()) +
                                     " threads, kernels " + p.plan.kernels()->name + "): build it with this engine's plan()");
             if (threads < 1) throw py::value_error("threads must be at least 1");
             py::array x = checked_array(xo, "input");
             const art::Shape3& is = p.plan.input_shape();
             if (x.ndim() != 4 || x.shape(1) != is.h || x.shape(2) != is.w || x.shape(3) != is.c)
               throw py::value_error("input has shape " + shape_str(x) +
                                     ", expected (N, " + std::to_string(is.h) + ", " + std::to_string(is.w) + ", " +
                                     std::to_string(is.c) + ")");
             const py::ssize_t n = x.shape(0);
             const int classes = p.plan.output_shape().c;
             py::array out;
             if (outo.is_none()) {
               out = py::array_t<float>({n, static_cast<py::ssize_t>(classes)});
             } else {
               out = checked_array(outo, "out");
               if (out.ndim() != 2 || out.shape(0) != n || out.shape(1) != classes)
                 throw py::value_error("out must have shape (" + std::to_string(n) + ", " + std::to_string(classes) + ")");
               if (!out.writeable()) throw py::value_error("out is read-only");
               const char* xb = static_cast<const char*>(x.data());
               const char* ob = static_cast<const char*>(out.data());
               if (ob < xb + x.nbytes() && xb < ob + out.nbytes()) throw py::value_error("out overlaps the input");
             }
             const float* xp = static_cast<const float*>(x.data());
             float* yp = static_cast<float*>(out.mutable_data());
             {
               py::gil_scoped_release release;
               e.run(p.plan, xp, n, yp, threads);
             }
             return out;
           }, py::arg("plan"), py::arg("x").noconvert(), py::arg("out") = py::none(), py::arg("threads") = 1,
           "Run a plan on an NHWC float32 batch; returns logits (N, classes).")
      .def("profile", [](art::Engine& e, PyPlan& p, const py::object& xo, int threads, int repeats) {
             if (!e.owns(p.plan))
               throw py::value_error("plan does not belong to this engine");
             py::array x = checked_array(xo, "input");
             const art::Shape3& is = p.plan.input_shape();
             if (x.ndim() != 4 || x.shape(0) < 1 || x.shape(1) != is.h || x.shape(2) != is.w || x.shape(3) != is.c)
               throw py::value_error("input has shape " + shape_str(x) + ", expected (1, " + std::to_string(is.h) + ", " +
                                     std::to_string(is.w) + ", " + std::to_string(is.c) + ")");
             std::vector<float> y(p.plan.output_shape().c);
             const float* xp = static_cast<const float*>(x.data());
             py::gil_scoped_release release;
             return e.profile(p.plan, xp, y.data(), threads, repeats);
           }, py::arg("plan"), py::arg("x").noconvert(), py::arg("threads") = 1, py::arg("repeats") = 20,
           "Median seconds per plan step (see Plan.steps()).");

  py::class_<art::Gate>(m, "Gate", "A counting semaphore shared by the daemon's transports (C++ and Python).")
      .def(py::init([](int n) {
             if (n < 1) throw py::value_error("a gate needs at least one slot");
             return new art::Gate(n);
           }))
      .def("acquire", [](art::Gate& g) { py::gil_scoped_release r; g.acquire(); })
      .def("try_acquire", &art::Gate::try_acquire)
      .def("acquire_bounded", [](art::Gate& g, int max_waiting) { py::gil_scoped_release r; return g.acquire_bounded(max_waiting); },
           "Wait for a slot unless max_waiting callers already wait: then False (busy).")
      .def_property_readonly("waiting", &art::Gate::waiting)
      .def_property_readonly("held", &art::Gate::held, "Slots taken now (the calls running under the gate).")
      .def("release", &art::Gate::release)
      .def("__enter__", [](art::Gate& g) { py::gil_scoped_release r; g.acquire(); })
      .def("__exit__", [](art::Gate& g, py::args) { g.release(); });

  m.def("shm_loop", [](int fd, art::Engine& e, PyPlan& p, int threads, const py::object& ino, const py::object& outo,
                       const std::string& entry, const py::object& geno, int64_t gen_seen, double report_s,
                       int max_records, double idle_s, bool check_finite, art::Gate& gate, int max_queue) {
          if (!p.plan.finalized() || !e.owns(p.plan)) throw py::value_error("plan is not finalized for this engine");
          if (threads < 1 || threads > e.max_threads()) throw py::value_error("threads out of range");
          if (fd < 0) throw py::value_error("bad file descriptor");
          py::array in = checked_array(ino, "input slot");
          py::array out = checked_array(outo, "output slot");
          if (!in.writeable() || !out.writeable()) throw py::value_error("slots must be writeable");
          if (!py::isinstance<py::array_t<int64_t>>(geno)) throw py::type_error("generation must be an int64 array");
          auto gen = py::reinterpret_borrow<py::array>(geno);
          if (gen.size() < 1 || !(gen.flags() & py::array::c_style) || !gen.dtype().is(py::dtype::of<int64_t>()))
            throw py::value_error("generation must be a C-contiguous int64 array of at least one element");
          const art::Shape3& is = p.plan.input_shape();
          const int64_t image = static_cast<int64_t>(is.h) * is.w * is.c;
          const int64_t classes = p.plan.output_shape().c;
          const int64_t cap = std::min<int64_t>(in.size() / image, out.size() / classes);
          if (cap < 1) throw py::value_error("the slots do not hold one image and its logits");
          const char* ib = static_cast<const char*>(in.data());
          const char* ob = static_cast<const char*>(out.data());
          if (ob < ib + in.nbytes() && ib < ob + out.nbytes()) throw py::value_error("output slot overlaps the input slot");
          art::ShmLoopArgs a;
          a.fd = fd; a.engine = &e; a.plan = &p.plan; a.threads = threads;
          a.input = static_cast<float*>(in.mutable_data()); a.output = static_cast<float*>(out.mutable_data());
          a.capacity_images = cap; a.entry = entry;
          a.generation = static_cast<const int64_t*>(gen.data()); a.generation_seen = gen_seen;
          a.report_s = report_s; a.max_records = std::max(1, max_records); a.idle_s = idle_s;
          a.check_finite = check_finite; a.gate = &gate; a.max_queue = std::max(0, max_queue);
          art::ShmLoopResult r;
          {
            py::gil_scoped_release release;
            r = art::shm_loop(a);
          }
          py::array_t<float> ms(static_cast<py::ssize_t>(r.ms.size()));
          py::array_t<int32_t> images(static_cast<py::ssize_t>(r.images.size()));
          if (!r.ms.empty()) {
            std::memcpy(ms.mutable_data(), r.ms.data(), r.ms.size() * sizeof(float));
            std::memcpy(images.mutable_data(), r.images.data(), r.images.size() * sizeof(int32_t));
          }
          return py::make_tuple(r.status, r.n, r.seq, r.magic, ms, images, r.error);
        }, py::arg("fd"), py::arg("engine"), py::arg("plan"), py::arg("threads"), py::arg("input").noconvert(),
        py::arg("output").noconvert(), py::arg("entry"), py::arg("generation").noconvert(), py::arg("generation_seen"),
        py::arg("report_s") = 0.01, py::arg("max_records") = 256, py::arg("idle_s") = 60.0,
        py::arg("check_finite") = true, py::arg("gate"), py::arg("max_queue") = 64,
        "Serve shared-memory request records on a socket until something needs the caller "
        "(daemon/shm.py): (status, n, seq, magic, ms[], images[], errno).");

  py::class_<PyPlan>(m, "Plan")
      .def(py::init([](const std::vector<std::tuple<int, int, int>>& shapes, int output, bool q8) {
             std::vector<art::Shape3> s;
             for (auto& t : shapes) s.push_back({std::get<0>(t), std::get<1>(t), std::get<2>(t)});
             return new PyPlan(std::move(s), output, q8);
           }), py::arg("shapes"), py::arg("output"), py::arg("q8") = false)
      .def("add_op", [](PyPlan& p, const std::string& kind, const std::string& name, int in0, int in1, int out,
                        int k, int stride, const std::string& act, const py::object& w, const py::object& scale,
                        const py::object& shift, int se_r, const py::object& se_w1, const py::object& se_b1,
                        const py::object& se_w2, const py::object& se_b2, const std::string& se_gate,
                        const py::kwargs& q8) {
             art::OpDesc op;
             op.kind = parse_kind(kind);
             op.name = name;
             op.in0 = in0; op.in1 = in1; op.out = out; op.k = k; op.stride = stride;
             op.act = parse_act(act);
             py::list keep;
             op.w = buffer(w, name + " weight", keep);
             op.scale = vec(scale, name + " scale");
             op.shift = vec(shift, name + " shift");
             op.se_r = se_r;
             op.se_w1 = buffer(se_w1, name + " SE reduce weight", keep);
             op.se_b1 = buffer(se_b1, name + " SE reduce bias", keep);
             op.se_w2 = buffer(se_w2, name + " SE expand weight", keep);
             op.se_b2 = buffer(se_b2, name + " SE expand bias", keep);
             op.se_gate = parse_act(se_gate);
             for (auto item : q8) {   // weights in panels, and the int8 fields (adaptive_rt/engine.py passes them for int8 plans)
               const std::string k = py::str(item.first);
               const py::object v = py::reinterpret_borrow<py::object>(item.second);
               if (k == "w_panels") to_panels(op.w, v, name + " weight");
               else if (k == "se_w1_panels") to_panels(op.se_w1, v, name + " SE reduce weight");
               else if (k == "se_w2_panels") to_panels(op.se_w2, v, name + " SE expand weight");
               else if (k == "w8") op.w8 = buffer8(v, name + " int8 weight", keep);
               else if (k == "se_w1_8") op.se_w1_8 = buffer8(v, name + " int8 SE reduce weight", keep);
               else if (k == "se_w2_8") op.se_w2_8 = buffer8(v, name + " int8 SE expand weight", keep);
               else if (k == "qin") op.qin = qparam(v, k);
               else if (k == "qin1") op.qin1 = qparam(v, k);
               else if (k == "qout") op.qout = qparam(v, k);
               else if (k == "q_pool") op.q_pool = qparam(v, k);
               else if (k == "q_red") op.q_red = qparam(v, k);
               else if (k == "m_a") op.m_a = v.cast<float>();
               else if (k == "m_b") op.m_b = v.cast<float>();
               else if (k == "se_mul1") op.se_mul1 = vec(v, name + " SE reduce multipliers");
               else if (k == "se_add1") op.se_add1 = vec(v, name + " SE reduce offsets");
               else if (k == "se_mul2") op.se_mul2 = vec(v, name + " SE expand multipliers");
               else if (k == "se_add2") op.se_add2 = vec(v, name + " SE expand offsets");
               else if (k == "float_out") op.float_out = v.cast<bool>();
               else if (k == "out_scale") op.out_scale = v.cast<float>();
               else if (k == "six") op.six = v.cast<float>();
               else throw py::type_error("add_op() got an unexpected keyword argument '" + k + "'");
             }
             p.plan.add(std::move(op));   // validates; throws ValueError (invalid_argument)
             for (auto a : keep) p.keep.append(a);
           },
           py::arg("kind"), py::arg("name"), py::arg("in0"), py::arg("in1") = -1, py::arg("out"),
           py::arg("k") = 1, py::arg("stride") = 1, py::arg("act") = "none", py::arg("w") = py::none(),
           py::arg("scale") = py::none(), py::arg("shift") = py::none(), py::arg("se_r") = 0,
           py::arg("se_w1") = py::none(), py::arg("se_b1") = py::none(), py::arg("se_w2") = py::none(),
           py::arg("se_b2") = py::none(), py::arg("se_gate") = "hsigmoid")
      .def("finalize", [](PyPlan& p, py::object eo) {
             art::Engine& e = eo.cast<art::Engine&>();
             e.finalize(p.plan);
             p.keep.append(eo);   // the plan may point into the engine's packed weights
           }, py::arg("engine"))
      .def("describe", [](const PyPlan& p) { return p.plan.describe(); })
      .def("steps", [](const PyPlan& p) { return p.plan.step_info(); },
           "(kind, name, macs, kernels) of each step after fusion.")
      .def_property_readonly("finalized", [](const PyPlan& p) { return p.plan.finalized(); })
      .def_property_readonly("q8", [](const PyPlan& p) { return p.plan.q8(); })
      .def_property_readonly("num_steps", [](const PyPlan& p) { return p.plan.num_steps(); })
      .def_property_readonly("lockstep_from", [](const PyPlan& p) { return p.plan.lockstep_from(); },
                             "The first step a batch runs step by step across its images (num_steps: none).")
      .def_property_readonly("arena_bytes", [](const PyPlan& p) { return p.plan.arena_floats() * 4; })
      .def_property_readonly("input_shape", [](const PyPlan& p) {
        auto& s = p.plan.input_shape(); return py::make_tuple(s.h, s.w, s.c); })
      .def_property_readonly("num_classes", [](const PyPlan& p) { return p.plan.output_shape().c; });
}
