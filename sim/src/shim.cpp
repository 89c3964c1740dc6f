// extern "C" face of the Verilated accelerator models: one abstract model
// type, one template instance per preset, ports addressed by number.
// Ports wider than 32 bits travel as little-endian arrays of u32 words.
#include <cstdint>
#include <cstring>
#include "verilated.h"
#include "verilated_vcd_c.h"
#include "models.inc"

namespace {
inline void put(CData& p, const uint32_t* w) { p = static_cast<CData>(w[0]); }
inline void put(SData& p, const uint32_t* w) { p = static_cast<SData>(w[0]); }
inline void put(IData& p, const uint32_t* w) { p = w[0]; }
inline void put(QData& p, const uint32_t* w) { p = static_cast<QData>(w[0]) | (static_cast<QData>(w[1]) << 32); }
template <std::size_t N> inline void put(VlWide<N>& p, const uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) p[i] = w[i];
}
inline uint64_t get(CData p) { return p; }
inline uint64_t get(SData p) { return p; }
inline uint64_t get(IData p) { return p; }
inline uint64_t get(QData p) { return p; }
template <std::size_t N> inline uint64_t get(const VlWide<N>& p) { return p[0]; }
inline int get_words(CData p, uint32_t* w, int n) { if (n > 0) w[0] = p; return 1; }
inline int get_words(SData p, uint32_t* w, int n) { if (n > 0) w[0] = p; return 1; }
inline int get_words(IData p, uint32_t* w, int n) { if (n > 0) w[0] = p; return 1; }
inline int get_words(QData p, uint32_t* w, int n) {
    if (n > 0) w[0] = static_cast<uint32_t>(p);
    if (n > 1) w[1] = static_cast<uint32_t>(p >> 32);
    return 2;
}
template <std::size_t N> inline int get_words(const VlWide<N>& p, uint32_t* w, int n) {
    for (std::size_t i = 0; i < N && static_cast<int>(i) < n; ++i) w[i] = p[i];
    return static_cast<int>(N);
}

// Must match src/ffi.rs.
enum InPort { CLOCK = 0, CMD_DATA, CMD_VALID, W_DATA, W_VALID, S_DATA, S_VALID, X_DATA, X_VALID, O_READY, RESET };
enum OutPort { CMD_READY = 0, W_READY, S_READY, X_READY, O_DATA, O_VALID };

struct Model {
    VerilatedContext ctx;
    VerilatedVcdC* tfp = nullptr;
    virtual ~Model() {}
    virtual void set(int port, const uint32_t* w) = 0;
    virtual uint64_t get_port(int port) = 0;
    virtual int get_port_words(int port, uint32_t* w, int n) = 0;
    virtual void eval() = 0;
    // The clock's rising edge in one eval() (see ModelT::rise); false where
    // this Verilator's model has no edge-trigger member to lower.
    virtual bool rise() = 0;
    virtual bool fast_edge() const = 0;
    virtual bool traced() const = 0;
    virtual void attach_trace(VerilatedVcdC* t) = 0;
};

template <class V, bool TRACED, bool FAST_EDGE> struct ModelT : Model {
    V* top;
    ModelT(int tracing, uint32_t seed, int x_random) {
        ctx.traceEverOn(tracing != 0);
        ctx.randReset(x_random);
        ctx.randSeed(static_cast<int>(seed));
        top = new V(&ctx, "top");
    }
    ~ModelT() override {
        if (tfp) { tfp->close(); delete tfp; tfp = nullptr; }
        top->final();
        delete top;
    }
    void set(int port, const uint32_t* w) override {
        switch (port) {
            case CLOCK: put(top->clock, w); break;
            case CMD_DATA: put(top->cmd_data, w); break;
            case CMD_VALID: put(top->cmd_valid, w); break;
            case W_DATA: put(top->w_data, w); break;
            case W_VALID: put(top->w_valid, w); break;
            case S_DATA: put(top->s_data, w); break;
            case S_VALID: put(top->s_valid, w); break;
            case X_DATA: put(top->x_data, w); break;
            case X_VALID: put(top->x_valid, w); break;
            case O_READY: put(top->o_ready, w); break;
            case RESET: put(top->reset, w); break;
        }
    }
    uint64_t get_port(int port) override {
        switch (port) {
            case CMD_READY: return get(top->cmd_ready);
            case W_READY: return get(top->w_ready);
            case S_READY: return get(top->s_ready);
            case X_READY: return get(top->x_ready);
            case O_DATA: return get(top->o_data);
            case O_VALID: return get(top->o_valid);
        }
        return 0;
    }
    int get_port_words(int port, uint32_t* w, int n) override {
        switch (port) {
            case O_DATA: return get_words(top->o_data, w, n);
        }
        return 0;
    }
    void eval() override { top->eval(); }
    // clock = 1 and one eval(), after the previous rise left clock at 0
    // without an eval: the trigger compares the clock with the value it
    // held at the last eval(), so set that to 0 first (what an eval with
    // clock = 0 would have recorded). The design has no falling-edge logic.
    bool rise() override {
        if constexpr (FAST_EDGE) {
            top->rootp->__Vtrigrprev__TOP__clock = 0;
            top->clock = 1;
            top->eval();
            top->clock = 0;
            return true;
        }
        return false;
    }
    bool fast_edge() const override { return FAST_EDGE; }
    bool traced() const override { return TRACED; }
    void attach_trace(VerilatedVcdC* t) override {
        if constexpr (TRACED) top->trace(t, 99);
    }
};
}  // namespace

extern "C" {
void* onebit_sim_new(const char* preset, int tracing, uint32_t seed, int x_random) {
#define MODEL(name, cls, traced, fast_edge) \
    if (std::strcmp(preset, #name) == 0 && (tracing != 0) == (traced != 0)) \
        return static_cast<Model*>(new ModelT<cls, traced != 0, fast_edge != 0>(tracing, seed, x_random));
    ONEBIT_MODELS
#undef MODEL
    return nullptr;
}
void onebit_sim_free(void* m) { delete static_cast<Model*>(m); }
void onebit_sim_set(void* m, int port, const uint32_t* words) { static_cast<Model*>(m)->set(port, words); }
uint64_t onebit_sim_get(void* m, int port) { return static_cast<Model*>(m)->get_port(port); }
int onebit_sim_get_words(void* m, int port, uint32_t* words, int n) {
    return static_cast<Model*>(m)->get_port_words(port, words, n);
}
void onebit_sim_eval(void* m) { static_cast<Model*>(m)->eval(); }
int onebit_sim_rise(void* m) { return static_cast<Model*>(m)->rise() ? 1 : 0; }
int onebit_sim_fast_edge(void* m) { return static_cast<Model*>(m)->fast_edge() ? 1 : 0; }
int onebit_sim_trace_open(void* m, const char* path) {
    Model* model = static_cast<Model*>(m);
    if (model->tfp) return 1;
    if (!model->traced()) return 3;
    model->tfp = new VerilatedVcdC;
    model->attach_trace(model->tfp);
    model->tfp->open(path);
    if (!model->tfp->isOpen()) { delete model->tfp; model->tfp = nullptr; return 2; }
    return 0;
}
void onebit_sim_trace_dump(void* m, uint64_t time) {
    Model* model = static_cast<Model*>(m);
    if (model->tfp) model->tfp->dump(time);
}
void onebit_sim_trace_flush(void* m) {
    Model* model = static_cast<Model*>(m);
    if (model->tfp) model->tfp->flush();
}
}
